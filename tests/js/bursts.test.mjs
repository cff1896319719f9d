// Bursts (issue 14, bug 15) through ChatApp against the fake server, with a store as slow
// as IndexedDB can be: each own message is opened by nobody (its ack files it; the copy
// the server fans out to this connection, or a sync's, is skipped while it is filed), no
// `sync` is asked for over own messages being filed, and all arrive once, in order.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

/** memoryKv whose writes take a few milliseconds, as IndexedDB's do under load. */
function slowKv() {
  const kv = memoryKv();
  const later = (fn) => async (...args) => {
    await new Promise((resolve) => setTimeout(resolve, 3));
    return fn(...args);
  };
  return { ...kv, set: later(kv.set), remove: later(kv.remove), update: later(kv.update) };
}

test('a burst of 30: own messages are not opened again and no sync is asked for over them', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  const app = await server.app(alice, slowKv());
  apps.push(app);
  const c = app.get(conv.id);
  await app.open(conv.id);
  let ownOpened = 0;
  const open = app.messenger.open.bind(app.messenger);
  app.messenger.open = (message) => {
    if (message.sender_id === alice.id) ownOpened += 1;
    return open(message);
  };
  const syncsBefore = server.frames.filter((f) => f.type === 'sync').length;
  for (let i = 1; i <= 30; i += 1) app.sendText(c, `burst ${i}`);
  const texts = () => app.items(c).entries.filter((e) => e.kind === 'message').map((e) => e.item.text);
  await until(() => texts().length === 30 && app.sender.pendingIn(c.id).length === 0, 'all acknowledged and filed');
  await server.settle(50);
  assert.deepEqual(texts(), Array.from({ length: 30 }, (_, i) => `burst ${i + 1}`));
  assert.deepEqual(server.messages.get(conv.id).map((m) => m.envelope.n), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.equal(ownOpened, 0, 'own messages opened again');
  assert.equal(server.frames.filter((f) => f.type === 'sync').length - syncsBefore, 0, 'syncs asked for during the burst');
  assert.equal(c.cursor, 30);
});
