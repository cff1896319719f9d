// File messages through the whole browser message path (ChatApp with sender.js, outbox.js,
// messages.js, timeline.js) under node against the fake server of tests/adversarial/js:
// the `send` frame names the blob, a reload resends it from the outbox with its blob ids,
// the reader gets the checked `file` object and caption, and a malformed `file` payload
// is marked refused (never shown as a file).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

const BLOB = 'AbCdEfGhIjKlMnOpQrStUv';
const FILE = {
  blob: BLOB,
  key: Buffer.alloc(32, 7).toString('base64'),
  prefix: Buffer.alloc(8, 9).toString('base64'),
  size: 70000,
  sha256: 'ab'.repeat(32),
  name: 'report.pdf',
  mime: 'application/pdf',
};
const shown = (app, conv) => app.items(conv).entries.filter((e) => e.kind === 'message').map((e) => e.item);

test('a file message names its blob, survives a reload in the outbox, and opens as a file', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  const kv = memoryKv();
  const app = await server.app(alice, kv);
  apps.push(app);
  app.socket.deliver = () => {}; // no ack: the tab dies with the message in its outbox
  app.sender.sendPayload(app.get(conv.id), { type: 'file', file: FILE, text: 'the report' }, { blobs: [BLOB] });
  await until(() => server.frames.some((f) => f.type === 'send'), 'sent once');
  assert.deepEqual(server.frames.find((f) => f.type === 'send').blobs, [BLOB]);
  assert.deepEqual(app.outbox.list()[0].blobs, [BLOB]);
  app.stop();
  apps.pop();

  server.frames.length = 0;
  const again = await server.app(alice, kv);
  apps.push(again);
  await again.open(conv.id);
  const mine = again.get(conv.id);
  await until(() => shown(again, mine).length === 1, 'stored after the reload');
  assert.deepEqual(server.frames.filter((f) => f.type === 'send').map((f) => f.blobs), [[BLOB]]);
  const own = shown(again, mine)[0];
  assert.deepEqual([own.status, own.text, own.file], ['ok', 'the report', FILE]);

  const reader = await server.app(bob, memoryKv());
  apps.push(reader);
  await reader.open(conv.id);
  const theirs = reader.get(conv.id);
  await until(() => shown(reader, theirs).length === 1, 'bob reads it');
  const item = shown(reader, theirs)[0];
  assert.deepEqual([item.status, item.text, item.file, item.fileRefused], ['ok', 'the report', FILE, undefined]);
});

test('a malformed file payload is refused (bad_meta), without its caption or fields', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  const app = await server.app(alice, memoryKv());
  apps.push(app);
  for (const file of [{ ...FILE, blob: '../../api/session/xxxx' }, { ...FILE, thumb: 'not base64!' }, { ...FILE, size: -1 }]) {
    app.sender.sendPayload(app.get(conv.id), { type: 'file', file, text: 'look' }, { blobs: [BLOB] });
  }
  const reader = await server.app(bob, memoryKv());
  apps.push(reader);
  await until(async () => {
    await reader.open(conv.id);
    return shown(reader, reader.get(conv.id)).length === 3;
  }, 'bob has all three');
  for (const item of shown(reader, reader.get(conv.id))) {
    assert.deepEqual([item.status, item.fileRefused, item.file, item.text], ['ok', 'bad_meta', undefined, '']);
  }
});
