// Read marks of the browser app (ChatApp, timeline.js) under node against the fake server
// of tests/adversarial/js (issue 14, bug 1): with the conversation open, the newest
// incoming message is marked read even when the cursor reaches it only later, because
// an own message below it was still being filed when it arrived.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

const marks = (server) => server.frames.filter((f) => f.type === 'read').map((f) => f.up_to);

test('the newest incoming message is marked read once the cursor reaches it', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  await server.post(conv, alice, 'hello');
  const app = await server.app(bob, memoryKv());
  apps.push(app);
  await app.open(conv.id);
  const mine = app.get(conv.id);
  await until(() => marks(server).includes(1), 'the first message read');

  // bob answers; the ack of his message waits until alice's reply has arrived
  const held = [];
  const deliver = app.socket.deliver.bind(app.socket);
  app.socket.deliver = (frame) => (frame.type === 'ack' ? held.push(frame) : deliver(frame));
  app.sendText(mine, 'mine');
  await until(() => held.length === 1, 'bob’s message stored');
  server.deliver(await server.post(conv, alice, 'theirs'));
  await until(() => mine.messages.has(3), 'alice’s reply filed');
  app.socket.deliver = deliver;
  deliver(held.pop());
  await until(() => mine.messages.has(2), 'bob’s own message filed');
  await until(() => marks(server).includes(3), 'alice’s reply marked read');
  assert.equal(mine.read_up_to, 3);
  assert.equal(mine.unread, 0);
});
