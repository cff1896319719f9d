// The conversation list's preview follows one's own messages (the screenshot of
// tests/browser/test_restore.py showed the other side's older message above "and again").
// A message of this device is filed from its ack; the copy the server fans out to this
// socket too is skipped when it comes while that filing is under way, so the list must be
// drawn again (ui/chat-view.js LIST_CHANGES) from the filing itself.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { previewOf } from '../../static/chat/file-kinds.js';
import { LIST_CHANGES } from '../../static/chat/ui/chat-view.js';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

test('the list is drawn again with one’s own message once it is filed from its ack', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  const a = await server.app(alice, memoryKv());
  const b = await server.app(bob, memoryKv());
  apps.push(a, b);
  await a.open(conv.id);
  const preview = () => previewOf(a.newest(a.get(conv.id)));
  b.sendText(b.get(conv.id), 'after the restore');
  await until(() => preview() === 'after the restore', 'bob’s message in alice’s list');

  // her own copy comes while her message is being filed (as in the browser): skipped
  const deliver = a.socket.deliver.bind(a.socket);
  a.socket.deliver = (frame) => {
    if (frame.type !== 'message' || frame.message.sender_device !== alice.deviceId) deliver(frame);
  };
  const drawn = []; // the preview each time the list would be drawn again
  a.addEventListener('change', ({ detail }) => LIST_CHANGES.has(detail.what) && drawn.push(preview()));
  a.sendText(a.get(conv.id), 'and again');
  await until(() => preview() === 'and again' && !a.sender.pendingIn(conv.id).length, 'her message filed');
  await server.settle();
  assert.equal(drawn.at(-1), 'and again', `the list was last drawn with ${JSON.stringify(drawn)}`);
});
