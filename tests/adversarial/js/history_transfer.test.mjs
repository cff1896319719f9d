// The history transfer of static/chat/transfer.js (PROTOCOL §7.3) under node, against a
// fake server: every message this device can read gets exactly one wrap that opens to
// its content key under the new device's key, newest first across conversations, at
// most 500 per request, with X-Device-Id; nothing is wrapped that this device cannot
// unwrap (a message the server made for other keys, a bad entry, a taken-back message);
// a cancelled or reloaded transfer resumes where it stopped without sending a wrap twice;
// a conversation the user left is skipped; a revoked target stops it with a reason.
// Run by tests/adversarial/test_browser_modules.py.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import { ApiError } from '../../../static/chat/api.js';
import { HistoryTransfer, MAX_WRAPS } from '../../../static/chat/transfer.js';

const DEVICE = 11;
const TARGET = 12;
let me; // this device's keys
let target; // the new device's keys
let stranger;
let envelopes; // readable envelopes, reused (the wrap does not depend on the AAD)
let foreign; // one made for other keys only

function memoryStorage() {
  const data = new Map();
  return { data, get: async (k) => structuredClone(data.get(k)), set: async (k, v) => void data.set(k, structuredClone(v)) };
}

/** Conversations {id: [messages ascending]}: created times interleave across them. */
function makeHistory(counts, { unreadable = new Set(), deleted = new Set() } = {}) {
  const history = {};
  const base = Date.parse('2025-01-01T00:00:00Z');
  let clock = 0;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ids = Object.keys(counts).map(Number);
  const next = Object.fromEntries(ids.map((id) => [id, 0]));
  for (let i = 0; i < total; i += 1) {
    const id = ids.filter((c) => next[c] < counts[c])[i % ids.filter((c) => next[c] < counts[c]).length];
    next[id] += 1;
    const seq = next[id];
    const messageId = id * 10000 + seq;
    history[id] ??= [];
    history[id].push({
      id: messageId,
      conversation: id,
      seq,
      created: new Date(base + (clock += 1000)).toISOString(),
      envelope: deleted.has(messageId) ? null : unreadable.has(messageId) ? foreign : envelopes[messageId % envelopes.length],
      deleted: deleted.has(messageId),
    });
  }
  return history;
}

function fakeApi(history, { refuse = new Set(), gone = false } = {}) {
  const posts = [];
  return {
    posts,
    async history(id, { beforeSeq = null, limit = 50 }) {
      const all = history[id].filter((m) => beforeSeq === null || m.seq < beforeSeq);
      const page = all.slice(Math.max(0, all.length - Math.min(limit, 100)));
      return { messages: structuredClone(page), has_more: all.length > page.length };
    },
    async historyKeys(targetId, wraps, deviceId) {
      if (gone) throw new ApiError(404, 'not_found', 'No such device of yours.');
      assert.equal(deviceId, DEVICE, 'X-Device-Id names this device');
      assert.equal(targetId, TARGET);
      assert.ok(wraps.length >= 1 && wraps.length <= MAX_WRAPS, `a request of ${wraps.length} wraps`);
      assert.ok(JSON.stringify({ wraps }).length < 256 * 1024, 'a request over the body limit');
      const convs = new Set(wraps.map((w) => Math.floor(w.message / 10000)));
      if ([...convs].some((c) => refuse.has(c))) throw new ApiError(403, 'not_member', 'Not a member.');
      posts.push(structuredClone(wraps));
      return { stored: wraps.length };
    },
  };
}

function transferFor(api, history, storage = memoryStorage()) {
  const conversations = () => Object.entries(history).map(([id, list]) => ({ id: Number(id), last_seq: list.length }));
  return new HistoryTransfer({ deviceId: DEVICE, keys: me, conversations, storage, api });
}

const targetInfo = () => ({ id: TARGET, name: 'new browser', enc_kid: target.encKid, enc_spki: P.b64encode(target.encSpki) });

/** Each wrap must open to the message's content key under the target's key (kc checks it). */
async function checkWraps(history, wraps) {
  const byId = new Map(Object.values(history).flat().map((m) => [m.id, m]));
  for (const wrap of wraps) {
    const m = byId.get(wrap.message);
    const envelope = { ...m.envelope, keys: { [target.encKid]: wrap.ek } };
    await P.rewrapContentKey(envelope, target, stranger.encPublic); // throws unless K matches kc
  }
}

before(async () => {
  [me, target, stranger] = await Promise.all([P.generateDeviceKeys(2048), P.generateDeviceKeys(2048), P.generateDeviceKeys(2048)]);
  envelopes = await Promise.all(Array.from({ length: 12 }, (_, i) => P.sealEnvelope({
    plaintext: P.textMessage(`m${i}`), conversationId: 1, senderId: 1, clientMsgId: P.newClientMsgId(), n: i + 1, head: '',
    senderKeys: me, recipientKeys: { [me.encKid]: me.encPublic },
  })));
  foreign = await P.sealEnvelope({
    plaintext: P.textMessage('not for this device'), conversationId: 1, senderId: 2, clientMsgId: P.newClientMsgId(), n: 1, head: '',
    senderKeys: stranger, recipientKeys: { [stranger.encKid]: stranger.encPublic },
  });
  foreign.keys[me.encKid] = foreign.keys[stranger.encKid]; // an entry this device cannot unwrap
});

test('every readable message gets one wrap, newest first, at most 500 a request', async () => {
  const unreadable = new Set([10003, 20007]);
  const deleted = new Set([10010]);
  const history = makeHistory({ 1: 420, 2: 300 }, { unreadable, deleted });
  const api = fakeApi(history);
  const transfer = await transferFor(api, history).load();
  await transfer.start(targetInfo());
  assert.equal(transfer.job.state, 'done');
  const wraps = api.posts.flat();
  const expected = Object.values(history).flat().filter((m) => !unreadable.has(m.id) && !deleted.has(m.id));
  assert.equal(wraps.length, expected.length);
  assert.equal(new Set(wraps.map((w) => w.message)).size, wraps.length, 'a message wrapped twice');
  assert.ok(api.posts.length >= 2 && api.posts.every((p) => p.length <= MAX_WRAPS));
  const created = new Map(Object.values(history).flat().map((m) => [m.id, Date.parse(m.created)]));
  const times = wraps.map((w) => created.get(w.message));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'not newest first across conversations');
  await checkWraps(history, wraps);
  assert.equal(transfer.job.wrapped, expected.length);
});

test('a message the target can already read is skipped', async () => {
  const history = makeHistory({ 1: 30 });
  for (const m of history[1].slice(10)) m.envelope = { ...m.envelope, keys: { ...m.envelope.keys, [target.encKid]: m.envelope.keys[me.encKid] } };
  const api = fakeApi(history);
  const transfer = await transferFor(api, history).load();
  await transfer.start(targetInfo());
  assert.deepEqual(api.posts.flat().map((w) => w.message).sort(), history[1].slice(0, 10).map((m) => m.id).sort());
});

test('cancelled, then resumed after a reload: nothing twice, nothing missing', async () => {
  const history = makeHistory({ 1: 700, 2: 400 });
  const api = fakeApi(history);
  const storage = memoryStorage();
  const first = await transferFor(api, history, storage).load();
  const original = api.historyKeys;
  api.historyKeys = async (...args) => {
    const result = await original(...args);
    await first.cancel(); // the person presses Cancel while the first batch is posted
    return result;
  };
  await first.start(targetInfo());
  assert.equal(first.job.state, 'cancelled');
  assert.equal(api.posts.length, 1);
  api.historyKeys = original;
  // a reload: a new instance reads the stored job and is resumed
  const second = await transferFor(api, history, storage).load();
  assert.equal(second.job.state, 'cancelled');
  assert.ok(second.done > 0 && second.done < 1100);
  await second.resume();
  assert.equal(second.job.state, 'done');
  const wraps = api.posts.flat();
  assert.equal(wraps.length, 1100);
  assert.equal(new Set(wraps.map((w) => w.message)).size, 1100, 'a wrap sent twice');
  await checkWraps(history, wraps.slice(-20));
});

test('a reload during a transfer resumes it when the app starts', async () => {
  const history = makeHistory({ 1: 60, 2: 60 });
  const api = fakeApi(history);
  const storage = memoryStorage();
  const first = await transferFor(api, history, storage).load();
  let posted = 0;
  const original = api.historyKeys;
  api.historyKeys = async () => {
    posted += 1;
    throw new ApiError(0, 'network', 'The server cannot be reached.'); // the page goes away mid-request
  };
  await first.start(targetInfo());
  assert.equal(posted, 1);
  assert.equal(first.job.state, 'failed');
  assert.match(first.job.error, /cannot be reached/);
  // a job stored as running (the tab closed mid-batch) runs again on start
  const stored = await storage.get(`transfer:${DEVICE}`);
  stored.state = 'running';
  await storage.set(`transfer:${DEVICE}`, stored);
  api.historyKeys = original;
  const second = await transferFor(api, history, storage).load();
  await second.resumeIfInterrupted();
  assert.equal(second.job.state, 'done');
  assert.equal(api.posts.flat().length, 120);
});

test('a conversation the user left meanwhile is skipped; the rest goes through', async () => {
  const history = makeHistory({ 1: 50, 2: 50 });
  const api = fakeApi(history, { refuse: new Set([2]) });
  const transfer = await transferFor(api, history).load();
  await transfer.start(targetInfo());
  assert.equal(transfer.job.state, 'done');
  const wraps = api.posts.flat();
  assert.equal(wraps.length, 50);
  assert.ok(wraps.every((w) => Math.floor(w.message / 10000) === 1));
  assert.equal(transfer.job.wrapped, 50);
});

test('a revoked target stops the transfer with a reason, and a wrong target key is refused', async () => {
  const history = makeHistory({ 1: 20 });
  const transfer = await transferFor(fakeApi(history, { gone: true }), history).load();
  await transfer.start(targetInfo());
  assert.equal(transfer.job.state, 'failed');
  assert.match(transfer.job.error, /no longer active/);
  const api = fakeApi(history);
  const other = await transferFor(api, history).load();
  await other.start({ ...targetInfo(), enc_kid: stranger.encKid });
  assert.equal(other.job.state, 'failed');
  assert.equal(api.posts.length, 0, 'wrapped for a key that is not the target’s');
});

test('wraps for a 4096-bit device are split to stay under the 256 KiB body limit', async () => {
  const big = await P.generateDeviceKeys(4096);
  const history = makeHistory({ 1: 520 });
  const api = fakeApi(history);
  const transfer = await transferFor(api, history).load();
  await transfer.start({ ...targetInfo(), enc_kid: big.encKid, enc_spki: P.b64encode(big.encSpki) });
  assert.equal(transfer.job.state, 'done');
  assert.equal(api.posts.flat().length, 520);
  assert.ok(api.posts.length >= 3, `${api.posts.length} requests`);
});
