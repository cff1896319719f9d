// A malicious server against the browser app's membership and ordering code (ChatApp with
// rosters.js, timeline.js, ledgers.js, sender.js, under node against fake_chat_server.mjs):
// a third member in a direct chat, a group member the roster does not name, swapped seqs,
// a replay after a reload. Each is refused or flagged, and the text of a message written
// to a conversation in that state never reaches the injected party.
// Run by tests/adversarial/test_browser_modules.py (node --test).
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import * as R from '../../../static/chat/roster.js';
import { IdentityPendingError } from '../../../static/chat/directory.js';
import { FakeServer, memoryKv, memoryLocks, readableBy, until } from './fake_chat_server.mjs';

let server;
let alice;
let bob;
let carol;
let eve;
const apps = [];

async function start(user, kv, locks = null) {
  const app = await server.app(user, kv, locks);
  apps.push(app);
  return app;
}

/** Wait until `check()` is true, letting frames and promises run (no timers to guess). */

const shown = (app, conv) => app.items(conv).entries.filter((e) => e.kind === 'message').map((e) => e.item);
const texts = (app, conv) => shown(app, conv).filter((i) => i.status === 'ok').map((i) => i.text);
const sentBy = (user) => server.sent.filter((s) => s.envelope.sig_kid === user.keys.sigKid);

beforeEach(async () => {
  server = new FakeServer();
  [alice, bob, carol, eve] = await Promise.all(['alice', 'bob', 'carol', 'eve'].map((n) => server.user(n)));
});

afterEach(() => {
  while (apps.length) apps.pop().stop();
});

describe('the fake server is sound', () => {
  test('a direct chat: v2 envelopes with n 1, 2 and an empty head, both ways', async () => {
    const conv = server.direct(alice, bob);
    await server.post(conv, bob, 'hello alice');
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.open(conv.id);
    assert.deepEqual(texts(app, c), ['hello alice']);
    await app.sendText(c, 'one');
    await app.sendText(c, 'two');
    await until(() => texts(app, c).length === 3, 'both sent');
    assert.deepEqual(sentBy(alice).map((s) => [s.envelope.v, s.envelope.n, s.envelope.head]), [[2, 1, ''], [2, 2, '']]);
    assert.ok(sentBy(alice).every((s) => readableBy(s.envelope, bob)));
    assert.deepEqual(app.noticesFor(c), []);
  });

  test('a group made in the app: record 0 signed here, messages under its head', async () => {
    const app = await start(alice);
    const c = await app.createGroup('Club', [{ id: bob.id, username: bob.username }]);
    await app.open(c.id);
    const conv = server.conversations.get(c.id);
    assert.equal(conv.roster.length, 1);
    assert.equal(conv.roster[0].by, alice.id);
    await app.sendText(c, 'welcome');
    await until(() => texts(app, c).includes('welcome'), 'sent');
    assert.equal(sentBy(alice)[0].envelope.head, conv.state.head);
    assert.equal(app.rosters.tampered(c.id), null);
    assert.deepEqual(app.items(c).entries.filter((e) => e.kind === 'event').map((e) => e.event.op), ['create']);
  });
});

describe('a third member in a direct chat', () => {
  test('a conversation frame adding eve: tampered, nothing sent, eve reads nothing', async () => {
    const conv = server.direct(alice, bob);
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.open(conv.id);
    conv.membersOverride = [alice, bob, eve];
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    assert.equal(app.noticesFor(c)[0].kind, 'tampered');
    assert.equal(app.sendState(c).ok, false);
    await app.sendText(c, 'secret for bob');
    await server.settle();
    const pending = app.items(c).pending;
    assert.equal(pending.length, 1);
    assert.equal(pending[0].state, 'blocked');
    assert.equal(server.sent.length, 0);
    assert.ok(server.sent.every((s) => !readableBy(s.envelope, eve)));
  });

  test('first seen with three members: tampered before anything is sent', async () => {
    const conv = server.direct(alice, bob);
    conv.membersOverride = [alice, bob, eve];
    const app = await start(alice);
    const c = app.get(conv.id);
    assert.ok(app.rosters.tampered(conv.id));
    await app.sendText(c, 'secret');
    await server.settle();
    assert.equal(server.sent.length, 0);
  });

  test('the other person swapped for eve, or a roster on a direct chat: tampered', async () => {
    for (const lie of [(conv) => { conv.membersOverride = [alice, eve]; }, (conv) => { server.hooks.conversationView = (c, v) => (c === conv ? { ...v, gid: crypto.randomUUID(), roster_head: { n: 0, hash: 'a'.repeat(64) } } : v); }]) {
      server.hooks = {};
      const conv = server.direct(alice, bob);
      const app = await start(alice);
      assert.equal(app.rosters.tampered(conv.id), null);
      lie(conv);
      server.announce(conv);
      await until(() => app.rosters.tampered(conv.id), 'tampered');
      await app.sendText(app.get(conv.id), 'secret');
      await server.settle();
      assert.ok(server.sent.every((s) => !readableBy(s.envelope, eve)));
      assert.equal(server.sent.filter((s) => s.conversation === conv.id).length, 0);
      app.stop();
    }
  });

  test('a message that names a roster head in a direct chat is not shown', async () => {
    const conv = server.direct(alice, bob);
    const app = await start(alice);
    await app.open(conv.id);
    server.deliver(await server.post(conv, bob, 'with a head', { head: 'b'.repeat(64) }));
    await until(() => shown(app, app.get(conv.id)).length === 1, 'filed');
    assert.equal(shown(app, app.get(conv.id))[0].status, 'failed');
    assert.ok(app.rosters.tampered(conv.id));
  });
});

describe('a group member the roster does not name', () => {
  async function groupApp() {
    const conv = await server.group(alice, [bob]);
    const app = await start(alice);
    await app.open(conv.id);
    assert.equal(app.rosters.tampered(conv.id), null);
    return { conv, app, c: app.get(conv.id) };
  }

  async function assertNothingReachesEve(app, c) {
    await app.sendText(c, 'group secret');
    await server.settle();
    assert.equal(app.items(c).pending[0]?.state, 'blocked');
    assert.ok(server.sent.every((s) => !readableBy(s.envelope, eve)));
    assert.equal(server.sent.length, 0);
  }

  test('listed in members with the same head: tampered', async () => {
    const { conv, app, c } = await groupApp();
    conv.membersOverride = [alice, bob, eve];
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    assert.match(app.rosters.tampered(conv.id).text, /member list/);
    await assertNothingReachesEve(app, c);
  });

  test('an add record the server signed with eve’s key for alice: tampered', async () => {
    const { conv, app, c } = await groupApp();
    const forged = await R.makeRecord(eve.keys, { gid: conv.gid, n: 1, prev: conv.state.head, op: 'add', subjects: [eve.id], by: alice.id });
    conv.roster.push({ ...forged, created: new Date().toISOString() });
    conv.membersOverride = [alice, bob, eve];
    server.hooks.conversationView = (cv, view) => ({ ...view, roster_head: { n: 1, hash: forged.hash } });
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    assert.match(app.rosters.tampered(conv.id).text, /does not verify/);
    await assertNothingReachesEve(app, c);
  });

  test('eve adding herself with her own device: forbidden by the rules, tampered', async () => {
    const { conv, app, c } = await groupApp();
    const record = await R.makeRecord(eve.keys, { gid: conv.gid, n: 1, prev: conv.state.head, op: 'add', subjects: [eve.id], by: eve.id });
    conv.roster.push({ ...record, created: new Date().toISOString() });
    conv.membersOverride = [alice, bob, eve];
    server.hooks.conversationView = (cv, view) => ({ ...view, roster_head: { n: 1, hash: record.hash } });
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    await assertNothingReachesEve(app, c);
  });

  test('a head the server announces but cannot show: tampered', async () => {
    const { conv, app, c } = await groupApp();
    server.hooks.conversationView = (cv, view) => ({ ...view, roster_head: { n: 1, hash: 'c'.repeat(64) } });
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    await assertNothingReachesEve(app, c);
  });

  test('a changed gid: tampered', async () => {
    const { conv, app, c } = await groupApp();
    server.hooks.conversationView = (cv, view) => ({ ...view, gid: crypto.randomUUID() });
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    await assertNothingReachesEve(app, c);
  });

  test('a message naming a head the chain cannot show, or from a non-member: not shown, tampered', async () => {
    const { conv, app, c } = await groupApp();
    server.deliver(await server.post(conv, bob, 'unknown head', { head: 'd'.repeat(64) }));
    await until(() => shown(app, c).length === 1, 'filed');
    assert.equal(shown(app, c)[0].status, 'failed');
    assert.deepEqual(texts(app, c), []);
    assert.ok(app.rosters.tampered(conv.id));
  });

  test('two owner devices adding at once: stale_roster, verified, signed again on the new head', async () => {
    const { conv, app, c } = await groupApp();
    let raced = 0;
    server.hooks.beforeRecord = async (cv) => {
      if (raced++ === 0) await server.change(cv, alice, 'add', [carol.id]); // alice's other device, first
    };
    await app.addMember(c, { id: eve.id, username: eve.username });
    assert.equal(raced, 2, 'the first post was refused (stale_roster) and the change signed again');
    assert.deepEqual(conv.roster.map((r) => [r.n, r.op, r.subjects]), [[0, 'create', [alice.id, bob.id]], [1, 'add', [carol.id]], [2, 'add', [eve.id]]]);
    assert.equal(app.rosters.tampered(conv.id), null);
    assert.equal(app.rosters.state(conv.id).n, 2);
    server.hooks.beforeRecord = null;
    await assert.rejects(app.addMember(c, { id: carol.id, username: carol.username }), /already a member/);
    assert.equal(conv.roster.length, 3);
  });

  test('a change signed under an identity not accepted yet waits (not tampered), then verifies once accepted', async () => {
    server.trust = Object.assign(new EventTarget(), { noticesFor: () => [] });
    const { conv, app, c } = await groupApp();
    server.hooks.recordSigner = async (userId) => {
      throw new IdentityPendingError(userId, server.byId(userId).username);
    };
    await server.change(conv, alice, 'add', [carol.id]);
    await until(() => app.rosters.waiting(conv.id), 'waiting');
    assert.equal(app.rosters.tampered(conv.id), null);
    assert.ok(app.noticesFor(c).some((n) => n.kind === 'roster_waiting' && n.blocking));
    await app.sendText(c, 'held back');
    await server.settle();
    assert.equal(server.sent.length, 0);
    server.hooks.recordSigner = null; // the person accepted the identity
    server.trust.dispatchEvent(new CustomEvent('change'));
    await until(() => app.rosters.state(conv.id)?.n === 1, 'verified');
    assert.equal(app.rosters.waiting(conv.id), null);
    assert.equal(app.rosters.tampered(conv.id), null);
    server.trust = null;
  });

  test('the real add, signed by the owner, is verified and shown as an event', async () => {
    const { conv, app, c } = await groupApp();
    await server.change(conv, alice, 'add', [carol.id]);
    await until(() => app.membersOf(c).length === 3, 'carol added');
    assert.equal(app.rosters.tampered(conv.id), null);
    await app.sendText(c, 'hi carol');
    await until(() => texts(app, c).includes('hi carol'), 'sent');
    assert.ok(readableBy(sentBy(alice)[0].envelope, carol));
    assert.ok(!readableBy(sentBy(alice)[0].envelope, eve));
    assert.deepEqual(app.items(c).entries.filter((e) => e.kind === 'event').map((e) => e.event.op), ['create', 'add']);
  });
});

describe('groups from before signed rosters (v1)', () => {
  test('the owner’s device signs record 0 with exactly the members; then it is a verified group', async () => {
    const conv = server.v1group(alice, [bob, carol]);
    const old = await server.post(conv, bob, 'from the v1 days');
    const app = await start(alice);
    await until(() => server.bootstrapped === 1 && app.rosters.state(conv.id), 'record 0 posted and verified');
    const record = conv.roster[0];
    assert.deepEqual([record.op, record.by, record.subjects, record.title], ['create', alice.id, [alice.id, bob.id, carol.id], 'Old club']);
    const c = app.get(conv.id);
    await app.open(conv.id);
    assert.equal(app.rosters.tampered(conv.id), null);
    assert.deepEqual(app.noticesFor(c).map((n) => n.kind), []);
    const item = shown(app, c).find((i) => i.id === old.id);
    assert.equal(item.status, 'ok');
    assert.equal(item.beforeRoster, true);
    await app.sendText(c, 'signed now');
    await until(() => texts(app, c).includes('signed now'), 'sent');
    assert.equal(sentBy(alice)[0].envelope.head, record.hash);
  });

  test('a member who is not the owner is warned and sends with an empty head', async () => {
    const conv = server.v1group(bob, [alice]);
    const app = await start(alice);
    const c = app.get(conv.id);
    assert.deepEqual(app.noticesFor(c).map((n) => n.kind), ['unsigned']);
    assert.equal(server.bootstrapped, undefined);
    await app.sendText(c, 'still v1 members');
    await until(() => texts(app, c).includes('still v1 members'), 'sent');
    assert.equal(sentBy(alice)[0].envelope.head, '');
  });

  test('a group whose gid was seen and now has none: tampered', async () => {
    const conv = await server.group(alice, [bob]);
    const app = await start(alice);
    server.hooks.conversationView = (cv, view) => ({ ...view, gid: null, roster_head: null });
    server.announce(conv);
    await until(() => app.rosters.tampered(conv.id), 'tampered');
    assert.match(app.rosters.tampered(conv.id).text, /no longer shows/);
  });
});

describe('order and replay', () => {
  test('swapped seqs: the second shows as out of order, never as text', async () => {
    const conv = server.direct(alice, bob);
    const first = await server.post(conv, bob, 'Do NOT sell.');
    const second = await server.post(conv, bob, 'Sell everything now.');
    [first.seq, second.seq] = [second.seq, first.seq];
    server.messages.get(conv.id).sort((a, b) => a.seq - b.seq);
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.open(conv.id);
    const items = shown(app, c);
    assert.deepEqual(items.map((i) => i.status), ['ok', 'out_of_order']);
    assert.deepEqual(texts(app, c), ['Sell everything now.']);
    assert.equal(items[1].text, undefined);
  });

  test('swapped live: the later-arriving one is flagged', async () => {
    const conv = server.direct(alice, bob);
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.open(conv.id);
    const first = await server.post(conv, bob, 'Do NOT sell.');
    const second = await server.post(conv, bob, 'Sell everything now.');
    [first.seq, second.seq] = [second.seq, first.seq];
    server.deliver(second);
    await until(() => shown(app, c).length === 1, 'one');
    server.deliver(first);
    await until(() => shown(app, c).length === 2, 'two');
    assert.deepEqual(shown(app, c).map((i) => i.status), ['ok', 'out_of_order']);
    assert.deepEqual(texts(app, c), ['Sell everything now.']);
  });

  test('a replay after a reload: flagged from the persisted ledger, the original stays fine', async () => {
    const conv = server.direct(alice, bob);
    for (let i = 1; i <= 3; i += 1) await server.post(conv, bob, `filler ${i}`);
    const original = await server.post(conv, bob, 'pay carol 10');
    const kv = memoryKv();
    const before = await start(alice, kv);
    await before.open(conv.id);
    assert.ok(texts(before, before.get(conv.id)).includes('pay carol 10'));
    before.stop();
    // the server re-serves the original's envelope under a new id and seq, and shows
    // only the newest message in the first page
    const replay = server.store(conv, bob, original.client_msg_id, structuredClone(original.envelope));
    server.hooks.history = (cv, page, { beforeSeq }) => (beforeSeq === null ? { messages: [structuredClone(replay)], has_more: true } : page);
    const after = await start(alice, kv);
    const c = after.get(conv.id);
    await after.open(conv.id);
    assert.deepEqual(shown(after, c).map((i) => [i.seq, i.status]), [[replay.seq, 'replayed']]);
    assert.deepEqual(texts(after, c), []);
    await after.loadOlder(c);
    const bySeq = Object.fromEntries(shown(after, c).map((i) => [i.seq, i.status]));
    assert.equal(bySeq[original.seq], 'ok');
    assert.equal(bySeq[replay.seq], 'replayed');
    assert.equal(texts(after, c).filter((t) => t === 'pay carol 10').length, 1);
  });

  test('without the persisted ledger the same replay would pass: the test can fail', async () => {
    const conv = server.direct(alice, bob);
    const original = await server.post(conv, bob, 'pay carol 10');
    const replay = server.store(conv, bob, original.client_msg_id, structuredClone(original.envelope));
    server.hooks.history = (cv, page, { beforeSeq }) => (beforeSeq === null ? { messages: [structuredClone(replay)], has_more: true } : page);
    const fresh = await start(alice, memoryKv());
    await fresh.open(conv.id);
    assert.deepEqual(texts(fresh, fresh.get(conv.id)), ['pay carol 10']);
  });

  test('a rollback (history lost below what was shown): said in the conversation and reloaded', async () => {
    const conv = server.direct(alice, bob);
    for (let i = 1; i <= 4; i += 1) await server.post(conv, bob, `m${i}`);
    const kv = memoryKv();
    const before = await start(alice, kv);
    await before.open(conv.id);
    before.stop();
    server.messages.get(conv.id).splice(2); // the server lost m3 and m4
    const after = await start(alice, kv);
    const c = after.get(conv.id);
    await after.open(conv.id);
    await until(() => after.noticesFor(c).some((n) => n.kind === 'rollback'), 'rollback notice');
    await until(() => shown(after, c).length === 2, 'reloaded');
    assert.deepEqual(texts(after, c), ['m1', 'm2']);
    const ledger = await after.ledgers.get(conv.id);
    assert.equal(ledger.isRollback(2), false);
  });
});

describe('sending: counters, refusals, reloads', () => {
  test('stale_counter seals again with a higher n; stale_roster with the same n for the new members', async () => {
    const conv = await server.group(alice, [bob]);
    server.counters.set(`${alice.deviceId}|${conv.id}`, 7); // a key file moved here: the server knows n 7
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.sendText(c, 'after the move');
    await until(() => texts(app, c).includes('after the move') || shown(app, c).length, 'sent');
    const mine = sentBy(alice);
    assert.deepEqual(mine.map((s) => s.envelope.n), [1, 8]);
    // the owner's other device adds carol; the server answers stale_roster to this send
    const record = await R.makeRecord(alice.keys, { gid: conv.gid, n: 1, prev: conv.state.head, op: 'add', subjects: [carol.id], by: alice.id });
    server.appendRecord(conv, record);
    await app.sendText(c, 'hello carol');
    await until(() => sentBy(alice).length === 3, 'refused once');
    server.announce(conv); // the frame of the change comes later than the refusal
    await until(() => texts(app, c).includes('hello carol'), 'sent');
    const last = sentBy(alice).slice(-2);
    assert.equal(last[0].envelope.n, last[1].envelope.n);
    assert.equal(last[1].envelope.head, record.hash);
    assert.ok(readableBy(last[1].envelope, carol));
    assert.equal(app.rosters.tampered(conv.id), null);
  });

  test('a burst of 50 goes out in n order, acknowledged, none flagged', async () => {
    const conv = server.direct(alice, bob);
    const app = await start(alice);
    const c = app.get(conv.id);
    await app.open(conv.id);
    await Promise.all(Array.from({ length: 50 }, (_, i) => app.sendText(c, `burst ${i + 1}`)));
    await until(() => shown(app, c).length === 50, 'all acknowledged');
    const stored = server.messages.get(conv.id);
    assert.deepEqual(stored.map((m) => m.envelope.n), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(texts(app, c), Array.from({ length: 50 }, (_, i) => `burst ${i + 1}`));
    assert.ok(shown(app, c).every((i) => i.status === 'ok'));
  });

  test('a reload mid-burst neither reuses nor skips an n the server then refuses', async () => {
    const conv = server.direct(alice, bob);
    const kv = memoryKv();
    const app = await start(alice, kv);
    const c = app.get(conv.id);
    let stored = 0;
    server.hooks.refuse = () => (stored >= 5 ? { code: 'never_answered' } : null);
    const realStore = server.store.bind(server);
    server.store = (...args) => {
      stored += 1;
      return realStore(...args);
    };
    // the tab dies after five are stored: the rest stay in the outbox (ciphertext)
    app.socket.deliver = () => {};
    for (let i = 1; i <= 12; i += 1) app.sendText(c, `m${i}`);
    // all twelve sealed and in the outbox (their acks never arrive), five of them stored
    await until(() => app.outbox.list().length === 12 && stored === 5, 'sealed and partly stored');
    app.stop();
    server.hooks.refuse = null;
    server.store = realStore;
    const again = await start(alice, kv);
    const c2 = again.get(conv.id);
    await again.open(conv.id);
    await until(() => shown(again, c2).length === 12, 'all twelve stored');
    const ns = server.messages.get(conv.id).map((m) => m.envelope.n);
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b));
    assert.equal(new Set(ns).size, 12);
    assert.deepEqual(texts(again, c2), Array.from({ length: 12 }, (_, i) => `m${i + 1}`));
    await again.sendText(c2, 'after');
    await until(() => texts(again, c2).includes('after'), 'sent after');
    assert.ok(shown(again, c2).every((i) => i.status === 'ok'));
  });

  test('two tabs of one profile share the counter: no n twice, nothing flagged', async () => {
    const conv = server.direct(alice, bob);
    const kv = memoryKv();
    const one = await start(alice, kv);
    const two = await start(alice, kv);
    const [c1, c2] = [one.get(conv.id), two.get(conv.id)];
    await one.open(conv.id);
    await two.open(conv.id);
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => one.sendText(c1, `one ${i}`)),
      ...Array.from({ length: 10 }, (_, i) => two.sendText(c2, `two ${i}`)),
    ]);
    await until(() => shown(one, c1).length === 20 && shown(two, c2).length === 20, 'all in both tabs');
    const ns = server.messages.get(conv.id).map((m) => m.envelope.n);
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b));
    assert.equal(new Set(ns).size, 20);
    for (const [app, c] of [[one, c1], [two, c2]]) assert.ok(shown(app, c).every((i) => i.status === 'ok'), JSON.stringify(shown(app, c).map((i) => i.status)));
  });

  test('with Web Locks, two tabs take turns: no refusal, each tab’s messages in order', async () => {
    const conv = server.direct(alice, bob);
    const kv = memoryKv();
    const locks = memoryLocks();
    const one = await start(alice, kv, locks);
    const two = await start(alice, kv, locks);
    const [c1, c2] = [one.get(conv.id), two.get(conv.id)];
    for (let i = 1; i <= 10; i += 1) {
      one.sendText(c1, `one ${i}`);
      two.sendText(c2, `two ${i}`);
    }
    await until(() => server.messages.get(conv.id).length === 20 && shown(one, c1).length === 20, 'all stored');
    assert.equal(server.sent.length, 20, 'no message was refused and sealed again');
    const order = texts(one, c1);
    for (const prefix of ['one', 'two']) {
      assert.deepEqual(order.filter((t) => t.startsWith(prefix)), Array.from({ length: 10 }, (_, i) => `${prefix} ${i + 1}`));
    }
  });
});

test('the envelope of every send is v2 with a signed n and head', async () => {
  const conv = server.direct(alice, bob);
  const app = await start(alice);
  await app.sendText(app.get(conv.id), 'checked');
  await until(() => server.sent.length === 1, 'sent');
  const { envelope, client_msg_id: clientMsgId } = server.sent[0];
  assert.ok(await P.verifyEnvelopeSignature(envelope, { conversationId: conv.id, senderId: alice.id, clientMsgId, sigPublic: alice.keys.sigPublic }));
  assert.equal(await P.verifyEnvelopeSignature({ ...envelope, n: envelope.n + 1 }, { conversationId: conv.id, senderId: alice.id, clientMsgId, sigPublic: alice.keys.sigPublic }), false);
});
