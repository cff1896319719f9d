// A server restored from a backup under open apps (PROTOCOL §9, tests/browser/test_restore.py)
// against the fake server of tests/adversarial/js: the restored database hands out the lost
// messages' ids and seqs again, so the first message stored after the restore has the id
// and seq of a message the apps showed before. It is a new message, not a duplicate: the
// sender files it (its ack), the other side shows it (reload), nothing is flagged.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { api } from '../../static/chat/api.js';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

const shown = (app, id) => app.timeline.shown(app.get(id)).map(({ item }) => [item.seq, item.status, item.text ?? null]);
const texts = (app, id) => shown(app, id).map(([, , text]) => text);

function backup(server) {
  return { messages: structuredClone(server.messages), counters: new Map(server.counters), next: server.nextId.message };
}

function restore(server, dump) {
  server.messages = structuredClone(dump.messages);
  server.counters = new Map(dump.counters);
  server.nextId.message = dump.next; // PostgreSQL's sequences come back with the dump
}

async function restoredUnderOpenApps({ listAfterAck, bobOpens = true }) {
  const server = new FakeServer();
  const listed = api.conversations; // the fake server's
  const { alice, bob, conv } = await server.aliceAndBob();
  const a = await server.app(alice, memoryKv());
  const b = await server.app(bob, memoryKv());
  apps.push(a, b);
  await a.open(conv.id);
  if (bobOpens) await b.open(conv.id);
  const say = async (text) => {
    a.sendText(a.get(conv.id), text);
    await until(() => texts(a, conv.id).includes(text) && texts(b, conv.id).includes(text), `“${text}” shown to both`);
  };
  for (const text of ['one', 'two']) await say(text);
  const dump = backup(server);
  for (const text of ['lost 1', 'lost 2', 'lost 3']) await say(text);

  a.socket.stop();
  b.socket.stop();
  restore(server, dump);
  a.sendText(a.get(conv.id), 'while down');
  await server.settle();
  assert.deepEqual(a.sender.pendingIn(conv.id).map((p) => p.text), ['while down']);

  if (listAfterAck) {
    // alice's list answers after her message is stored and acknowledged (what the browser saw)
    api.conversations = async () => {
      await until(() => server.messages.get(conv.id).length === 3, 'the message stored');
      await server.settle();
      return listed();
    };
  }
  a.socket.start();
  await until(() => texts(a, conv.id).includes('while down'), 'alice shows her message');
  api.conversations = listed;
  b.socket.start(); // bob's list says last_seq 3 (below the 5 he showed); id 3 is another message now
  for (const app of [a, b]) {
    await until(() => texts(app, conv.id).length === 3 && !texts(app, conv.id).includes("lost 1"), () => `the restored history: ${app.me.username} ${JSON.stringify(shown(app, conv.id))}`);
    assert.deepEqual(shown(app, conv.id), [[1, 'ok', 'one'], [2, 'ok', 'two'], [3, 'ok', 'while down']]);
    assert.ok(app.get(conv.id).rollback, 'the rollback is noticed');
    assert.equal(app.timeline.newestShown(app.get(conv.id)).text, 'while down'); // the list's preview
    assert.equal(app.get(conv.id).cursor, 3);
    assert.equal(app.noticesFor(app.get(conv.id)).filter((n) => n.kind !== 'rollback').length, 0);
  }
  assert.equal(a.sender.pendingIn(conv.id).length, 0);
  assert.deepEqual(server.messages.get(conv.id).map((m) => m.seq), [1, 2, 3]);
  assert.equal(server.sent.filter((s) => s.client_msg_id === server.messages.get(conv.id)[2].client_msg_id).length, 1);
}

test('a message sent while the server was restored is filed though its id and seq were shown before (ack first)', async () => {
  await restoredUnderOpenApps({ listAfterAck: true });
});

test('a message sent while the server was restored is filed (list first)', async () => {
  await restoredUnderOpenApps({ listAfterAck: false });
});

test('a conversation that is not open shows the server’s history after the restore too', async () => {
  await restoredUnderOpenApps({ listAfterAck: false, bobOpens: false });
});
