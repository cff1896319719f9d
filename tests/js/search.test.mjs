// Local search (issue 14): words and normalizing (search-text.js), queries over the
// in-memory index (search-index.js), and the index through ChatApp against the fake
// server: messages indexed as they are shown, stored encrypted (no plaintext in `kv`),
// loaded again after a reload, rebuilt from history, dropped when no longer readable.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { normalize, parseQuery, snippet, tokenize } from '../../static/chat/search-text.js';
import { SearchIndex } from '../../static/chat/search-index.js';
import { FakeServer, memoryKv, until } from '../adversarial/js/fake_chat_server.mjs';
import * as Pl from '../../static/chat/payloads.js';

test('normalize: NFKC, case-folded, diacritics stripped', () => {
  assert.equal(normalize('Ünïcödé'), 'unicode');
  assert.equal(normalize('ＦＵＬＬ'), 'full'); // fullwidth
  assert.equal(normalize('ﬁnance'), 'finance'); // ligature
  assert.equal(normalize('Straße'), 'strasse');
  assert.equal(normalize('ΟΔΟΣ'), normalize('οδος'));
  assert.equal(normalize('e\u0301te\u0301'), 'ete'); // combining accents
  assert.equal(normalize('Crème Brûlée'), 'creme brulee');
});

test('tokenize: words of letters and digits, CJK one token per character, distinct', () => {
  assert.deepEqual(tokenize('Hello, hello WORLD! 42x'), ['hello', 'world', '42x']);
  assert.deepEqual(tokenize('see https://example.org/a-b'), ['see', 'https', 'example', 'org', 'a', 'b']);
  assert.deepEqual(tokenize('東京へ行く'), ['東', '京', 'へ', '行', 'く']);
  assert.deepEqual(tokenize('مرحبا بالعالم'), ['مرحبا', 'بالعالم']);
  assert.deepEqual(tokenize('½'), ['1', '2']);
  assert.deepEqual(tokenize(''), []);
  assert.equal(tokenize('x'.repeat(100))[0].length, 40);
});

test('parseQuery: the last term is a prefix while it is being typed', () => {
  assert.deepEqual(parseQuery('Café pla'), { terms: ['cafe', 'pla'], prefix: true });
  assert.deepEqual(parseQuery('café plan '), { terms: ['cafe', 'plan'], prefix: false });
  assert.deepEqual(parseQuery('plan plan'), { terms: ['plan'], prefix: true });
  assert.deepEqual(parseQuery('  ?! '), { terms: [], prefix: false });
});

test('snippet: the match as written, highlighted, cut around it', () => {
  const parsed = parseQuery('brul');
  assert.deepEqual(snippet('A crème brûlée, please', parsed), [
    { text: 'A crème ', hit: false },
    { text: 'brûlée', hit: true },
    { text: ', please', hit: false },
  ]);
  const long = `${'word '.repeat(40)}needle ${'tail '.repeat(40)}`;
  const parts = snippet(long, parseQuery('needle'));
  assert.equal(parts[0].text, '…');
  assert.deepEqual(parts.find((p) => p.hit), { text: 'needle', hit: true });
  assert.equal(parts.at(-1).text, '…');
  assert.ok(parts.map((p) => p.text).join('').length < 140);
});

function doc(conversation, id, text, created = `2026-01-01T00:00:${String(id % 60).padStart(2, '0')}Z`) {
  return { conversation, id, seq: id, senderId: 1, sender: 'alice', created, text };
}

test('index: every term must match, the last as a prefix; newest first; replace and remove', () => {
  const index = new SearchIndex();
  index.add(doc(1, 1, 'Lunch at the café tomorrow?'));
  index.add(doc(1, 2, 'Tomorrow works. Which cafe?'));
  index.add(doc(2, 3, 'The CAFÉ on Main street'));
  index.add(doc(2, 4, 'nothing to see'));
  const ids = (q) => index.search(q).results.map((r) => r.doc.id);
  assert.deepEqual(ids('cafe'), [3, 2, 1]);
  assert.deepEqual(ids('caf'), [3, 2, 1]);
  assert.deepEqual(ids('caf '), []); // finished word: exact
  assert.deepEqual(ids('tomorrow caf'), [2, 1]);
  assert.deepEqual(ids('main str'), [3]);
  assert.deepEqual(ids('zzz'), []);
  assert.equal(index.search('cafe', { limit: 2 }).total, 3);
  assert.equal(index.search('cafe', { limit: 2 }).results.length, 2);
  index.add(doc(1, 2, 'Edited: no coffee'));
  assert.deepEqual(ids('cafe'), [3, 1]);
  assert.deepEqual(ids('coffee'), [2]);
  index.remove(2, 3);
  assert.deepEqual(ids('cafe'), [1]);
  assert.equal(index.removeFrom(1, 2), 1);
  assert.deepEqual(ids('coffee'), []);
  assert.equal(index.size, 2);
});

test('index: rows of a bucket round-trip, compaction keeps results', () => {
  const index = new SearchIndex();
  for (let i = 1; i <= 3000; i += 1) index.add(doc(7, i, `message number ${i} ${i % 2 ? 'odd' : 'even'}`));
  for (let i = 1; i <= 2000; i += 1) index.remove(7, i);
  assert.equal(index.size, 1000);
  assert.equal(index.search('odd').total, 500);
  const copy = new SearchIndex();
  for (const [conversation, bucket] of index.takeDirty()) copy.addRows(conversation, index.bucketRows(conversation, bucket));
  assert.equal(copy.size, 1000);
  assert.deepEqual(copy.search('number 2999').results.map((r) => r.doc.id), [2999]);
});

// --- through ChatApp -------------------------------------------------------------------------

const apps = [];
afterEach(() => {
  while (apps.length) apps.pop().stop();
});

function plaintextIn(kv, words) {
  const raw = JSON.stringify([...kv.map.entries()]);
  return words.filter((w) => raw.includes(w));
}

test('ChatApp indexes shown messages, stores them encrypted, loads them after a reload, rebuilds from history', async () => {
  const server = new FakeServer();
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => server.user(n)));
  const withBob = server.direct(alice, bob);
  const withCarol = server.direct(alice, carol);
  await server.post(withCarol, carol, 'the zebra crossing at noon');
  const kv = memoryKv();
  const app = await server.app(alice, kv);
  apps.push(app);
  await app.searchReady;
  await app.open(withBob.id);
  server.deliver(await server.post(withBob, bob, 'Meet at the Ölmühle bakery'));
  await until(() => app.search.search('olmuhle').total === 1, 'a live message is indexed');
  assert.equal(app.search.search('zebra').total, 0, 'an unopened conversation is not indexed yet');
  await app.open(withCarol.id);
  await until(() => app.search.search('zeb').total === 1, 'an opened conversation is indexed');
  const hit = app.search.search('zeb').results[0];
  assert.equal(hit.doc.conversation, withCarol.id);
  assert.equal(hit.doc.sender, 'carol');
  await app.search.flush();
  assert.deepEqual(plaintextIn(kv, ['zebra', 'Ölmühle', 'olmuhle', 'bakery', 'crossing']), []);
  assert.ok([...kv.map.keys()].some((k) => k.startsWith(`search:${alice.id}:${alice.deviceId}:c${withCarol.id}:`)));
  app.stop();

  // a reload: the stored buckets are decrypted into memory, nothing opened yet
  const again = await server.app(alice, kv);
  apps.push(again);
  await again.searchReady;
  assert.equal(again.search.search('zebra').total, 1);
  assert.equal(again.search.search('bakery').total, 1);

  // another device's key cannot read the buckets: they are dropped, not shown
  const other = await server.user('alice2');
  const stranger = await server.app({ ...other, id: alice.id, username: 'alice' }, kv);
  apps.push(stranger);
  await stranger.searchReady;
  assert.equal(stranger.search.search('zebra').total, 0);
  stranger.stop();

  // rebuild: the whole history of every conversation, without opening any
  const fresh = await server.app(alice, memoryKv());
  apps.push(fresh);
  await fresh.searchReady;
  for (let i = 0; i < 101; i += 1) await server.post(withBob, bob, `filler ${i}`);
  assert.equal(fresh.search.search('zebra').total, 0);
  await fresh.search.rebuild();
  assert.equal(fresh.search.rebuildState.running, false);
  assert.equal(fresh.search.rebuildState.done, 103);
  assert.equal(fresh.search.search('zebra').total, 1);
  assert.equal(fresh.search.search('filler').total, 101);
  assert.equal(fresh.search.search('olmuhle').total, 1);
});

test('an edit is indexed as shown, a delete or a server-deleted message leaves the index', async () => {
  const server = new FakeServer();
  const { alice, bob, conv } = await server.aliceAndBob();
  const app = await server.app(alice, memoryKv());
  apps.push(app);
  await app.searchReady;
  await app.open(conv.id);
  const plan = await server.post(conv, bob, 'Meet at the harbour at ten');
  const other = await server.post(conv, bob, 'Bring the umbrella');
  server.deliver(plan);
  server.deliver(other);
  const ref = (m) => Pl.messageRef(m.sender_id, m.client_msg_id);
  await until(() => app.search.search('harbour').total === 1, 'the text is indexed');
  server.deliver(await server.post(conv, bob, '', { payload: Pl.editPayload(ref(plan), 'Meet at the lighthouse at ten') }));
  await until(() => app.search.search('lighthouse').total === 1, 'the edit is indexed');
  assert.equal(app.search.search('harbour').total, 0);
  assert.equal(app.search.search('meet').total, 1, 'an edit is not a message of its own');
  server.deliver(await server.post(conv, bob, '', { payload: Pl.deletePayload(ref(plan)) }));
  await until(() => app.search.search('lighthouse').total === 0, 'the deleted message leaves the index');
  // the server takes the other one back: a `deleted` frame
  server.push({ type: 'deleted', conversation: conv.id, id: other.id, seq: other.seq });
  await until(() => app.search.search('umbrella').total === 0, 'a server-deleted message leaves the index');
});
