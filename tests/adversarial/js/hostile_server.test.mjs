// A malicious server or member against the browser's message opening (static/chat:
// directory.js's senderKey, the key a message is checked against, and protocol.js's
// openEnvelope) under node, with v2 identities: the server's identity and device lists
// are faked by replacing api methods; messages are crafted. Each attack must be refused,
// never come back as trusted text. (Rewritten for v2 by the browser-identity lane; the
// identity attacks themselves are in hostile_identity.test.mjs.)
// Run by tests/adversarial/test_browser_modules.py.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import { api } from '../../../static/chat/api.js';
import { Directory } from '../../../static/chat/directory.js';
import { Trust } from '../../../static/chat/trust.js';

const CONV = 40;
const EARLIER = new Date(Date.now() - 86400000).toISOString();
const USERS = { alice: 1, bob: 2, carol: 3 };
let keys;
let lists; // username -> device records the "server" answers
let identities; // username -> listed identity
let directory;
let nextId = 100;

async function record(id, userId, k, { proofKeys = k, certBy = keys[Object.keys(USERS).find((n) => USERS[n] === userId)].identity } = {}) {
  return {
    id,
    name: `device ${id}`,
    enc_spki: P.b64encode(k.encSpki),
    sig_spki: P.b64encode(k.sigSpki),
    enc_kid: k.encKid,
    sig_kid: k.sigKid,
    proof: await P.signDeviceProof(proofKeys, userId),
    cert: certBy ? await P.signDeviceCert(certBy, userId, k.encKid, k.sigKid) : null,
    created: EARLIER,
    revoked: null,
  };
}

async function message({ sender = 'bob', deviceId = 21, signer, recipients, text, clientMsgId = P.newClientMsgId(), contentKey }) {
  const recipientKeys = Object.fromEntries(recipients.map((k) => [k.encKid, k.encPublic]));
  const envelope = await P.sealEnvelope({
    plaintext: P.textMessage(text),
    conversationId: CONV,
    senderId: USERS[sender],
    clientMsgId,
    n: nextId,
    head: '',
    senderKeys: signer,
    recipientKeys,
    ...(contentKey ? { contentKey } : {}),
  });
  return {
    id: nextId++, conversation: CONV, seq: nextId, sender, sender_id: USERS[sender],
    sender_device: deviceId, client_msg_id: clientMsgId, created: new Date().toISOString(), envelope,
  };
}

/** What the app does with a stored message: the sender's key from the directory, then open. */
async function open(m) {
  const sender = await directory.senderKey(m);
  if (!sender) return { status: 'failed', reason: 'no trusted sender key' };
  try {
    const plain = await P.openEnvelope(m.envelope, {
      conversationId: m.conversation, senderId: m.sender_id, clientMsgId: m.client_msg_id, deviceKeys: keys.alice, sigPublic: sender.key,
    });
    return { status: 'ok', text: plain.text };
  } catch (error) {
    return { status: 'failed', reason: error.detail ?? String(error) };
  }
}

before(async () => {
  const names = ['alice', 'bob', 'carol', 'mallory', 'other'];
  const made = await Promise.all(names.map(() => P.generateDeviceKeys(2048)));
  const ids = await Promise.all(names.map(() => P.generateIdentityKey(2048)));
  keys = {};
  for (const [i, n] of names.entries()) keys[n] = await made[i].withIdentity(ids[i]);
  identities = {};
  for (const n of ['alice', 'bob', 'carol']) {
    const pair = keys[n].identity;
    identities[n] = { id_spki: P.b64encode(pair.spki), id_kid: pair.kid, proof: await P.signIdentityProof(pair, USERS[n]), upgrade: null, created: EARLIER };
  }
  lists = {
    alice: [await record(11, 1, keys.alice)],
    bob: [await record(21, 2, keys.bob)],
    carol: [await record(31, 3, keys.carol)],
  };
  api.userIdentity = async (username) => ({ user: { id: USERS[username], username }, identity: identities[username], previous: [] });
  api.userDevices = async (username) => {
    if (!lists[username]) throw new Error('not found');
    return { user: { id: USERS[username], username }, devices: structuredClone(lists[username]) };
  };
  const trust = await new Trust(1, { storage: { get: async () => undefined, set: async () => {} } }).load();
  await trust.pinSelf({ id: 1, username: 'alice' }, keys.alice.idKid);
  directory = new Directory({ me: { id: 1, username: 'alice' }, trust });
  for (const name of ['alice', 'bob', 'carol']) await directory.load(name);
});

const trusted = (result, text) => result.status === 'ok' && result.text === text;

test('a genuine message opens (the fake server is sound)', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'genuine' });
  assert.ok(trusted(await open(m), 'genuine'));
});

test('substituted public keys for a known device (valid proof, cert copied): refused, never encrypted to', async () => {
  const real = lists.bob;
  lists.bob = [{ ...(await record(21, 2, keys.mallory, { certBy: null })), cert: real[0].cert }];
  try {
    await directory.load('bob', { force: true });
    const m = await message({ signer: keys.mallory, recipients: [keys.alice, keys.mallory], text: 'substituted' });
    const result = await open(m);
    assert.notEqual(result.status, 'ok', `shown as trusted: ${JSON.stringify(result)}`);
    const { keys: to, problems } = await directory.recipientsOf(['bob']);
    assert.ok(!(keys.mallory.encKid in to));
    assert.deepEqual(problems.map((p) => p.kind), ['uncertified_device']);
  } finally {
    lists.bob = real;
    await directory.load('bob', { force: true });
  }
});

test('a signature that belongs to another user is refused', async () => {
  for (const [sender, deviceId] of [['bob', 31], ['bob', 21], ['carol', 31]]) {
    const m = await message({ signer: keys.carol, recipients: [keys.alice], text: 'signed by carol', deviceId });
    m.sender = sender;
    m.sender_id = USERS.bob; // claims to be bob
    const result = await open(m);
    assert.notEqual(result.status, 'ok', `${sender}/${deviceId}: ${JSON.stringify(result)}`);
  }
});

test('a replayed envelope under a new client_msg_id or conversation is refused', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'pay 10' });
  assert.ok(trusted(await open(m), 'pay 10'));
  const renamed = { ...m, id: nextId++, client_msg_id: P.newClientMsgId() };
  assert.notEqual((await open(renamed)).status, 'ok');
  const moved = { ...m, id: nextId++, conversation: CONV + 1 };
  assert.notEqual((await open(moved)).status, 'ok');
});

test('a ciphertext for two keys is caught by the key commitment', async () => {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const m = await message({ signer: keys.bob, recipients: [keys.bob], text: 'for bob', contentKey: k1 });
  m.envelope.keys[keys.alice.encKid] = P.b64encode(await globalThis.crypto.subtle.encrypt(P.OAEP, keys.alice.encPublic, k2));
  const result = await open(m);
  assert.equal(result.status, 'failed');
  assert.match(result.reason, /commitment/);
});

test('malformed, renumbered or downgraded envelopes are refused', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'base' });
  for (const change of [{ v: 1 }, { n: m.envelope.n + 1 }, { head: 'a'.repeat(64) }, { keys: {} }, { sig_kid: keys.bob.encKid }, { plain: 'hi' }, { ct: m.envelope.iv }]) {
    const result = await open({ ...m, id: nextId++, envelope: { ...m.envelope, ...change } });
    assert.notEqual(result.status, 'ok', JSON.stringify(change));
  }
});

test('a device record whose proof was made by other keys is never used', async () => {
  const real = lists.carol;
  lists.carol = [await record(31, 3, keys.carol, { proofKeys: keys.mallory })];
  try {
    const { keys: to, problems } = await directory.recipientsOf(['carol'], { force: true });
    assert.deepEqual(to, {});
    assert.equal(problems.length, 1);
    const m = await message({ sender: 'carol', deviceId: 31, signer: keys.carol, recipients: [keys.alice], text: 'x' });
    assert.equal(await directory.senderKey(m), null);
  } finally {
    lists.carol = real;
  }
});
