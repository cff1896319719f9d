// A message is counted unread once. The conversation list's `unread` (the server's count)
// can already hold a message whose live frame is still being opened: filing that frame
// must not count it again (tests/browser/test_realtime.py saw "2" for one message).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

async function twoPeople() {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  // only bob writes: the server counts every message unread for alice
  server.hooks.conversationView = (_, view) => ({ ...view, unread: view.last_seq });
  const a = await server.app(alice, memoryKv());
  const b = await server.app(bob, memoryKv());
  apps.push(a, b);
  const held = []; // bob's message frames to alice, held back until the test lets them go
  const deliver = a.socket.deliver.bind(a.socket);
  a.socket.deliver = (frame) => (frame.type === 'message' ? held.push(frame) : deliver(frame));
  const release = () => {
    a.socket.deliver = deliver;
    for (const frame of held.splice(0)) deliver(frame);
  };
  return { server, a, b, conv, held, release };
}

test('a message the fetched list already counted is not counted again when its frame is filed', async () => {
  const { server, a, b, conv, held, release } = await twoPeople();
  b.sendText(b.get(conv.id), 'first contact');
  await until(() => held.length === 1, 'bob’s message stored');
  await a.refreshConversations();
  assert.equal(a.get(conv.id).unread, 1);
  release();
  await until(() => a.get(conv.id).messages.size === 1, 'bob’s message filed');
  await server.settle();
  assert.equal(a.get(conv.id).unread, 1);
});

test('a list fetched before a message was stored does not take back its count', async () => {
  const { server, a, b, conv, held, release } = await twoPeople();
  const stale = a.get(conv.id).unreadThrough;
  b.sendText(b.get(conv.id), 'first contact');
  await until(() => held.length === 1, 'bob’s message stored');
  release();
  await until(() => a.get(conv.id).messages.size === 1, 'bob’s message filed');
  assert.equal(a.get(conv.id).unread, 1);
  // the answer to a list request sent before the message was stored comes now
  a.conversations.upsert({ ...server.view(server.conversations.get(conv.id)), last_seq: stale, unread: 0 }, { fromList: true });
  assert.equal(a.get(conv.id).unread, 1);
  await server.settle();
  assert.equal(a.get(conv.id).unread, 1);
});
