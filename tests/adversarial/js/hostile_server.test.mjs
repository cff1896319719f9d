// A malicious server or member against the browser app's message code (static/chat:
// directory.js, trust.js, messages.js) under node: the server's device lists are faked by
// replacing api.userDevices; messages are crafted (v2 envelopes, PROTOCOL §2). Each attack
// must be refused or raise a trust alert, never come back as trusted text. Run by
// tests/adversarial/test_browser_modules.py. (Rewritten for v2 by the browser-rosters
// lane; membership and ordering attacks are in hostile_roster.test.mjs.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import { api } from '../../../static/chat/api.js';
import { Directory } from '../../../static/chat/directory.js';
import { Trust } from '../../../static/chat/trust.js';
import { Messenger } from '../../../static/chat/messages.js';

const CONV = 40;
const EARLIER = new Date(Date.now() - 86400000).toISOString();
const USERS = { alice: 1, bob: 2, carol: 3 };
let keys;
let lists; // username -> device records the "server" answers
let messenger;
let nextId = 100;
let nextN = 1;

class MemoryTrust extends Trust {
  async save() {}
}

async function record(id, userId, k, proofKeys = k) {
  return {
    id,
    name: `device ${id}`,
    enc_spki: P.b64encode(k.encSpki),
    sig_spki: P.b64encode(k.sigSpki),
    enc_kid: k.encKid,
    sig_kid: k.sigKid,
    proof: await P.signDeviceProof(proofKeys, userId),
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
    n: nextN++,
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

before(async () => {
  const names = ['alice', 'bob', 'carol', 'mallory', 'other'];
  const made = await Promise.all(names.map(() => P.generateDeviceKeys(2048)));
  keys = Object.fromEntries(names.map((n, i) => [n, made[i]]));
  lists = {
    alice: [await record(11, 1, keys.alice)],
    bob: [await record(21, 2, keys.bob)],
    carol: [await record(31, 3, keys.carol)],
  };
  api.userDevices = async (username) => {
    if (!lists[username]) throw new Error('not found');
    return { user: { id: USERS[username], username }, devices: structuredClone(lists[username]) };
  };
  const directory = new Directory();
  const trust = new MemoryTrust(1, 11);
  Object.assign(directory, { me: 'alice', trust });
  for (const name of ['alice', 'bob', 'carol']) {
    const { user, devices } = await directory.active(name);
    await trust.observe(user, devices);
  }
  messenger = new Messenger({ me: { id: 1, username: 'alice' }, keys: keys.alice, directory });
  messenger.trust = trust;
});

const trusted = (result, text) => result.status === 'ok' && result.text === text;
const alertsFor = (name, kind) => messenger.trust.pending([name]).filter((a) => a.kind === kind);

test('a genuine message opens (the fake server is sound)', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'genuine' });
  assert.ok(trusted(await messenger.open(m), 'genuine'));
});

test('substituted public key for a known device: refused (and blocking)', async () => {
  lists.bob = [await record(21, 2, keys.mallory)];
  const m = await message({ signer: keys.mallory, recipients: [keys.alice, keys.mallory], text: 'substituted' });
  const result = await messenger.open(m);
  assert.notEqual(result.status, 'ok', `shown as trusted: ${JSON.stringify(result)}`);
  const { problems } = await messenger.directory.recipientsOf(['bob', 'alice'], { force: true });
  assert.deepEqual(problems.map((p) => [p.kind, p.username]), [['identity_changed', 'bob']]);
  assert.ok(alertsFor('bob', 'replaced').length >= 1);
  await messenger.trust.acknowledge(messenger.trust.pending(['bob']).map((a) => a.id)); // accepted
  lists.bob = [await record(21, 2, keys.bob)];
  await messenger.directory.active('bob', { force: true }).then(({ user, devices }) => messenger.trust.observe(user, devices));
  await messenger.trust.acknowledge(messenger.trust.pending(['bob']).map((a) => a.id));
});

test('injected device: its message only with an "added" alert', async () => {
  lists.bob = [await record(21, 2, keys.bob), await record(22, 2, keys.other)];
  const m = await message({ deviceId: 22, signer: keys.other, recipients: [keys.alice, keys.bob, keys.other], text: 'injected' });
  const result = await messenger.open(m);
  const warned = alertsFor('bob', 'added').some((a) => a.device.id === 22);
  assert.ok(!trusted(result, 'injected') || warned, `trusted without a warning: ${JSON.stringify(result)}`);
  lists.bob = [await record(21, 2, keys.bob)];
});

test('a signature that belongs to another user is refused', async () => {
  for (const [sender, deviceId] of [['bob', 31], ['bob', 21], ['carol', 31]]) {
    const m = await message({ signer: keys.carol, recipients: [keys.alice], text: 'signed by carol', deviceId });
    m.sender = sender;
    m.sender_id = USERS.bob; // claims to be bob
    const result = await messenger.open(m);
    assert.notEqual(result.status, 'ok', `${sender}/${deviceId}: ${JSON.stringify(result)}`);
  }
});

test('a replayed envelope under a new client_msg_id or conversation is refused', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'pay 10' });
  assert.ok(trusted(await messenger.open(m), 'pay 10'));
  const renamed = { ...m, id: nextId++, client_msg_id: P.newClientMsgId() };
  assert.notEqual((await messenger.open(renamed)).status, 'ok');
  const moved = { ...m, id: nextId++, conversation: CONV + 1 };
  assert.notEqual((await messenger.open(moved)).status, 'ok');
});

test('a ciphertext for two keys is caught by the key commitment', async () => {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const m = await message({ signer: keys.bob, recipients: [keys.bob], text: 'for bob', contentKey: k1 });
  m.envelope.keys[keys.alice.encKid] = P.b64encode(await globalThis.crypto.subtle.encrypt(P.OAEP, keys.alice.encPublic, k2));
  const result = await messenger.open(m);
  assert.equal(result.status, 'failed');
  assert.match(result.reason, /commitment/);
});

test('malformed, altered or downgraded envelopes are refused', async () => {
  const m = await message({ signer: keys.bob, recipients: [keys.alice, keys.bob], text: 'base' });
  const { n, head, ...v1Shaped } = m.envelope;
  const changes = [
    { v: 1 }, { v: 3 }, { keys: {} }, { sig_kid: keys.bob.encKid }, { plain: 'hi' }, { ct: m.envelope.iv },
    { n: m.envelope.n + 1 }, { n: 0 }, { n: 1.5 }, { n: '1' }, { head: 'a'.repeat(64) }, { head: null },
  ];
  assert.notEqual((await messenger.open({ ...m, id: nextId++, envelope: { ...v1Shaped, v: 1 } })).status, 'ok', 'v1 downgrade');
  for (const change of changes) {
    const result = await messenger.open({ ...m, id: nextId++, envelope: { ...m.envelope, ...change } });
    assert.notEqual(result.status, 'ok', JSON.stringify(change));
  }
});

test('a device record whose proof was made by other keys is never used', async () => {
  lists.carol = [await record(31, 3, keys.carol, keys.mallory)];
  const { devices, rejected } = await messenger.directory.active('carol', { force: true });
  assert.equal(devices.length, 0);
  assert.equal(rejected.length, 1);
});
