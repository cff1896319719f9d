// A malicious server or member against replies, reactions, edits and deletes in the browser
// app (ChatApp with timeline.js folding payloads.js's applyPayloads, under node against
// fake_chat_server.mjs): an edit, a delete or a reaction taken back by someone other than
// the one who may, one relabelled by the server as the original sender's, or replayed,
// changes nothing the screen shows; and reactions, edits and deletes never count as new
// messages or notify.
// Run by tests/adversarial/test_browser_modules.py (node --test).
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as Pl from '../../../static/chat/payloads.js';
import { FakeServer, until } from './fake_chat_server.mjs';

let server;
let alice;
let bob;
let mallory;
const apps = [];

/** What alice's screen shows: one line per shown message. */
function screen(app, conv) {
  return app.items(conv).entries.filter((e) => e.kind === 'message').map(({ item, view }) => ({
    seq: item.seq,
    status: view.deleted ? 'deleted' : item.status,
    text: view.deleted ? null : view.edited ?? item.text ?? null,
    edited: view.edited !== null,
    reactions: view.reactions,
  }));
}

const refOf = (m) => Pl.messageRef(m.sender_id, m.client_msg_id);

beforeEach(async () => {
  server = new FakeServer();
  [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => server.user(n)));
});

afterEach(() => {
  while (apps.length) apps.pop().stop();
});

async function watch(conv) {
  const app = await server.app(alice);
  apps.push(app);
  await app.open(conv.id);
  return [app, app.get(conv.id)];
}

test('an edit, a delete and a reaction taken back by another member change nothing', async () => {
  const conv = await server.group(alice, [bob, mallory]);
  const plan = await server.post(conv, bob, 'Meet at the station at 9');
  await server.post(conv, bob, '', { payload: Pl.reactionPayload(refOf(plan), '👍') });
  const [app, c] = await watch(conv);
  await until(() => screen(app, c).length === 1, 'the plan');
  const before = screen(app, c);
  assert.deepEqual(before.map((s) => [s.text, s.reactions]), [['Meet at the station at 9', { '👍': [bob.id] }]]);
  for (const payload of [
    Pl.editPayload(refOf(plan), 'Meet at the harbour at 11'),
    Pl.deletePayload(refOf(plan)),
    Pl.reactionPayload(refOf(plan), '👍', true),
  ]) {
    server.deliver(await server.post(conv, mallory, '', { payload }));
  }
  await until(() => c.messages.size === 5, 'all three filed');
  assert.deepEqual(screen(app, c), before);
  // the genuine sender may: her edit shows, marked edited
  server.deliver(await server.post(conv, bob, '', { payload: Pl.editPayload(refOf(plan), 'Meet at the station at 10') }));
  await until(() => screen(app, c)[0].edited, 'the genuine edit');
  assert.equal(screen(app, c)[0].text, 'Meet at the station at 10');
});

test('an edit or delete the server relabels as the original sender’s is not verified and not applied', async () => {
  const conv = await server.group(alice, [bob, mallory]);
  const plan = await server.post(conv, bob, 'Pay carol 10');
  const [app, c] = await watch(conv);
  await until(() => screen(app, c).length === 1, 'the plan');
  for (const payload of [Pl.editPayload(refOf(plan), 'Pay mallory 1000'), Pl.deletePayload(refOf(plan))]) {
    const forged = await server.post(conv, mallory, '', { payload });
    Object.assign(forged, { sender_id: bob.id, sender: 'bob', sender_device: bob.deviceId });
    server.deliver(forged);
  }
  await until(() => c.messages.size === 3, 'both filed');
  assert.deepEqual(screen(app, c).map((s) => [s.status, s.text]), [['ok', 'Pay carol 10'], ['failed', null], ['failed', null]]);
});

test('a replayed edit under a new seq is flagged, never applied again after a later edit', async () => {
  const conv = server.direct(alice, bob);
  const plan = await server.post(conv, bob, 'v1');
  const first = await server.post(conv, bob, '', { payload: Pl.editPayload(refOf(plan), 'v2') });
  await server.post(conv, bob, '', { payload: Pl.editPayload(refOf(plan), 'v3') });
  const [app, c] = await watch(conv);
  await until(() => screen(app, c)[0]?.text === 'v3', 'edited twice');
  const replay = { ...structuredClone(first), id: 999, seq: 4 };
  server.messages.get(conv.id).push(replay);
  server.deliver(replay);
  await until(() => c.messages.size === 4, 'the replay filed');
  assert.deepEqual(screen(app, c).map((s) => [s.status, s.text]), [['ok', 'v3'], ['replayed', null]]);
});

test('reactions, edits and deletes are not new messages: no unread count, no notification', async () => {
  const conv = server.direct(alice, bob);
  const hello = await server.post(conv, bob, 'hello');
  const app = await server.app(alice);
  apps.push(app);
  const notified = [];
  app.notifier = { message: (who) => notified.push(who) };
  const c = app.get(conv.id);
  c.read_up_to = 1;
  c.unread = 0;
  await app.sender.load();
  for (const payload of [Pl.reactionPayload(refOf(hello), '❤️'), Pl.editPayload(refOf(hello), 'hello!'), Pl.deletePayload(refOf(hello))]) {
    server.deliver(await server.post(conv, bob, '', { payload }));
  }
  await until(() => c.messages.size === 3, 'three filed');
  assert.deepEqual([c.unread, notified], [0, []]);
  server.deliver(await server.post(conv, bob, 'a real message'));
  await until(() => c.unread === 1, 'counted');
  assert.deepEqual(notified, ['bob']);
});

test('a deleted frame shows the message deleted at once; its text is gone', async () => {
  const conv = server.direct(alice, bob);
  const secret = await server.post(conv, bob, 'regrettable');
  const other = await server.post(conv, bob, 'fine');
  const [app, c] = await watch(conv);
  await until(() => screen(app, c).length === 2, 'shown');
  server.push({ type: 'deleted', conversation: conv.id, id: other.id, seq: other.seq + 5 }); // names no shown message
  await server.settle();
  server.push({ type: 'deleted', conversation: conv.id, id: secret.id, seq: secret.seq });
  await until(() => screen(app, c)[0].status === 'deleted', 'deleted');
  assert.equal(c.byId.get(secret.id).text, undefined);
  assert.deepEqual(screen(app, c).map((s) => [s.status, s.text]), [['deleted', null], ['ok', 'fine']]);
});

test('after a reload, reactions, edits and deletes the server counted as unread are taken off', async () => {
  const conv = server.direct(alice, bob);
  const hello = await server.post(conv, bob, 'hello');
  await server.post(conv, bob, '', { payload: Pl.reactionPayload(refOf(hello), '❤️') });
  await server.post(conv, bob, '', { payload: Pl.editPayload(refOf(hello), 'hello!') });
  await server.post(conv, alice, 'my own');
  server.hooks.conversationView = (c, view) => ({ ...view, unread: 3, read_up_to: 0 }); // what the server counts
  const app = await server.app(alice);
  apps.push(app);
  const c = app.get(conv.id);
  await until(() => c.unread === 1, 'one unread: the text');
});
