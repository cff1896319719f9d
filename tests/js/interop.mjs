// Run by tests/test_js_interop.py: JS makes a fresh user carol (user 3) as a v1 device that
// upgrades (identity, proof, cert, upgrade signature, keystores v1 and v2), a second device
// carol2 linked to her (link code, cert, id_wrap), v2 and v1 envelopes, a history rewrap of
// the Python-made envelope vector, a roster chain with its single-field tampers (and the
// error JS gives each), and a safety number; it prints them as JSON for Python to check.
import * as P from '../../static/chat/protocol.js';
import * as R from '../../static/chat/roster.js';
import { lockKeystore } from '../../static/chat/keystore.js';
import { fixedKeys, outcome, rosterSigningKey, vector } from './helpers.mjs';

const CAROL_ID = 3;
const { alice, bob } = await fixedKeys();
const carolV1 = await P.generateDeviceKeys(2048);
const identity = await P.generateIdentityKey(2048);
const carol = await carolV1.withIdentity(identity);
const carol2 = await P.generateDeviceKeys(2048);
const text = 'from JS: Grüße 👋 "q" \\ \n';
const passphrase = 'Cafe\u0301 passphrase';
const b64 = P.b64encode;

const deviceOut = async (device, userId, pair) => ({
  enc_spki: b64(device.encSpki),
  sig_spki: b64(device.sigSpki),
  enc_kid: device.encKid,
  sig_kid: device.sigKid,
  proof: await P.signDeviceProof(device, userId),
  cert: await P.signDeviceCert(pair, userId, device.encKid, device.sigKid),
});

// --- the roster chain -------------------------------------------------------------------

const GID = P.newClientMsgId();
const devices = {
  1: [{ ...(await deviceOut(alice, 1, alice.identity)) }],
  2: [{ ...(await deviceOut(bob, 2, bob.identity)) }],
  3: [await deviceOut(carol, CAROL_ID, identity), await deviceOut(carol2, CAROL_ID, identity)],
};
const identities = { 1: b64(alice.idSpki), 2: b64(bob.idSpki), 3: b64(identity.spki) };
const steps = [
  [carol, 'create', [1, 2, 3], CAROL_ID, 'JS 群組 ✓'],
  [carol, 'add', [4], CAROL_ID, null],
  [alice, 'title', [], 1, 'renamed by alice'],
  [carol2, 'remove', [4], CAROL_ID, null],
  [carol, 'leave', [CAROL_ID], CAROL_ID, null], // the owner leaves: alice (joined at 0, id 1)
  [alice, 'add', [5], 1, null],
  [bob, 'title', [], 2, 'and by bob'],
];
const records = [];
for (const [n, [device, op, subjects, by, title]] of steps.entries()) {
  const record = await R.makeRecord(device, { gid: GID, n, prev: n ? records[n - 1].hash : R.GENESIS, op, subjects, by, title });
  records.push({ ...record, created: `2024-06-01T00:00:0${n}Z` });
}
const signingKey = rosterSigningKey(devices, identities);
const state = await R.verifyChain(GID, records, signingKey);
const lookups = signingKey.calls;

const flipHex = (hex) => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');
const flipB64 = (b) => {
  const bytes = P.b64decode(b);
  bytes[17] ^= 1;
  return b64(bytes);
};
const rehash = async (record) => ({ ...record, hash: await R.recordHash(GID, record) });
const OTHER_OP = { create: 'add', add: 'remove', remove: 'add', leave: 'title', title: 'leave' };
const tampered = [];
for (const [index, record] of records.entries()) {
  const { subjects } = record;
  const changes = {
    n: record.n + 1,
    prev: flipHex(record.prev),
    op: OTHER_OP[record.op],
    subjects: subjects.length > 1 ? subjects.slice(0, -1) : [...new Set([...subjects, 99])].sort((a, b) => a - b),
    by: record.by === 2 ? 1 : 2,
    title: record.title === null ? 'x' : null,
    sig_kid: record.sig_kid === carol2.sigKid ? carol.sigKid : carol2.sigKid,
    sig: flipB64(record.sig),
    hash: flipHex(record.hash),
  };
  for (const [field, value] of Object.entries(changes)) {
    tampered.push({ name: `${index}.${field}`, prefix: index, tail: [{ ...record, [field]: value }] });
    if (!['sig_kid', 'hash'].includes(field)) {
      tampered.push({ name: `${index}.${field}_rehashed`, prefix: index, tail: [await rehash({ ...record, [field]: value })] });
    }
  }
}
const at = async (index, device, op, subjects, by, title = null) => ({
  ...(await R.makeRecord(device, { gid: GID, n: index, prev: records[index - 1].hash, op, subjects, by, title })),
  created: '2024-06-01T00:00:00Z',
});
tampered.push(
  { name: 'add_by_non_owner', prefix: 1, tail: [await at(1, alice, 'add', [4], 1)] },
  { name: 'remove_owner', prefix: 3, tail: [await at(3, carol, 'remove', [CAROL_ID], CAROL_ID)] },
  { name: 'leave_naming_another', prefix: 4, tail: [await at(4, carol, 'leave', [1], CAROL_ID)] },
  { name: 'title_after_leaving', prefix: 5, tail: [await at(5, carol2, 'title', [], CAROL_ID, 't')] },
  { name: 'signed_by_another_users_device', prefix: 2, tail: [await at(2, bob, 'title', [], 1, 't')] },
);
for (const c of tampered) {
  c.error = await outcome(R.verifyChain(GID, [...records.slice(0, c.prefix), ...c.tail], signingKey));
}

// --- envelopes, link, rewrap -------------------------------------------------------------

const head = records[3].hash; // carol is still a member there
const fromCarolContext = { conversationId: 9, senderId: CAROL_ID, clientMsgId: P.newClientMsgId() };
const fromAliceContext = { conversationId: 10, senderId: 1, clientMsgId: P.newClientMsgId() };
const v1Context = { conversationId: 9, senderId: 1, clientMsgId: P.newClientMsgId() };
const trust = { identities: { 1: { id_kid: alice.idKid, verified: true }, 3: { id_kid: identity.kid, verified: false } } };
const python = vector('envelope_v2.json');

const output = {
  carol: {
    user_id: CAROL_ID,
    ...(await deviceOut(carol, CAROL_ID, identity)),
    id_spki: b64(identity.spki),
    id_kid: identity.kid,
    id_proof: await P.signIdentityProof(identity, CAROL_ID),
    upgrade: await P.signIdentityUpgrade(carolV1, CAROL_ID, identity.kid),
  },
  passphrase,
  keystore_v1: await lockKeystore(carolV1, { userId: CAROL_ID, username: 'carol', deviceId: 31, passphrase, iterations: 100000 }),
  keystore: await lockKeystore(carol, { userId: CAROL_ID, username: 'carol', deviceId: 31, passphrase, iterations: 100000 }),
  carol2: {
    ...(await deviceOut(carol2, CAROL_ID, identity)),
    link_code: await P.linkCode(CAROL_ID, identity.kid, carol2.encKid, carol2.sigKid),
    keystore: await lockKeystore(carol2, { userId: CAROL_ID, username: 'carol', deviceId: 32, passphrase, iterations: 100000 }),
  },
  trust,
  id_wrap: await P.makeIdWrap(identity, trust, { userId: CAROL_ID, encPublic: carol2.encPublic, sigKid: carol2.sigKid }),
  alice_cert: await P.signDeviceCert(alice.identity, 1, alice.encKid, alice.sigKid),
  from_carol: {
    context: fromCarolContext,
    text,
    envelope: await P.sealEnvelope({
      plaintext: P.textMessage(text), ...fromCarolContext, n: 1, head, senderKeys: carol,
      recipientKeys: { [carol.encKid]: carol.encPublic, [alice.encKid]: alice.encPublic, [bob.encKid]: bob.encPublic },
    }),
  },
  from_alice: {
    context: fromAliceContext,
    text,
    envelope: await P.sealEnvelope({
      plaintext: P.textMessage(text), ...fromAliceContext, n: 2 ** 53 - 1, head: '', senderKeys: alice,
      recipientKeys: { [bob.encKid]: bob.encPublic },
    }),
  },
  v1_from_alice: {
    context: v1Context,
    text,
    envelope: await P.sealEnvelopeV1({
      plaintext: P.textMessage(text), ...v1Context, senderKeys: alice, recipientKeys: { [bob.encKid]: bob.encPublic },
    }),
  },
  rewrap_for_carol2: await P.rewrapContentKey(python.envelope, bob, carol2.encPublic),
  roster: { gid: GID, records, devices, identities, final: state.toJson(), lookups, tampered },
  safety_number: await P.safetyNumber(CAROL_ID, identity.kid, 1, alice.idKid),
};
process.stdout.write(JSON.stringify(output));
