// A v1 browser keystore meets v2 (PROTOCOL §7.5) under node: static/chat/device.js's
// reconcile, against a fake server. The v2 keystore is stored before the identity is
// published; the upgrade signature is the device's own; the device is certified; an
// account that already has an identity makes the device link instead; a server that lists
// an identity failing its checks is refused; an interrupted upgrade finishes next time.
// Run by tests/adversarial/test_browser_modules.py.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import { ApiError, api } from '../../../static/chat/api.js';
import { lockKeystore, unlockKeystore } from '../../../static/chat/keystore.js';
import { reconcile } from '../../../static/chat/device.js';

const ME = { id: 5, username: 'vic' };
const DEVICE_ID = 51;
const PASS = 'violet harbour kettle mountain';
let v1keys;
let v1record;
let server;
let log;

async function identityBody(pair, upgrade = null) {
  return { id_spki: P.b64encode(pair.spki), id_kid: pair.kid, proof: await P.signIdentityProof(pair, ME.id), upgrade, created: new Date().toISOString() };
}

function fake() {
  log = [];
  api.myDevices = async () => ({ devices: [{ id: DEVICE_ID, name: 'old', enc_kid: v1keys.encKid, sig_kid: v1keys.sigKid, cert: server.cert, created: '', revoked: server.revoked }] });
  api.userIdentity = async () => ({ user: ME, identity: server.identity, previous: [] });
  api.putIdentity = async (body) => {
    log.push(['put', body]);
    if (server.failPut) throw new ApiError(0, 'network', 'The server cannot be reached.');
    const spki = P.b64decode(body.id_spki);
    const kid = await P.computeKid(spki);
    if (server.identity && server.identity.id_kid !== kid) throw new ApiError(409, 'identity_exists', 'exists');
    server.identity = { id_spki: body.id_spki, id_kid: kid, proof: body.proof, upgrade: body.upgrade ?? null, created: new Date().toISOString() };
    return { identity: server.identity };
  };
  api.certifyDevice = async (id, cert) => {
    log.push(['cert', id, cert]);
    server.cert = cert;
    return { device: {} };
  };
}

before(async () => {
  v1keys = await P.generateDeviceKeys(2048);
  v1record = await lockKeystore(v1keys, { userId: ME.id, username: ME.username, deviceId: DEVICE_ID, passphrase: PASS, iterations: 100000 });
  assert.equal(v1record.v, 1);
});

test('a v1 device of a user without an identity makes it: stored first, upgrade signature, cert', async () => {
  server = { identity: null, cert: null, revoked: null };
  fake();
  const saved = [];
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  const outcome = await reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async (r) => { saved.push(r); log.push(['save']); } });
  assert.equal(outcome.state, 'ready');
  assert.deepEqual(log.map((e) => e[0]), ['save', 'put', 'cert'], 'the identity must be stored before it is published');
  assert.equal(saved[0].v, 2);
  assert.equal(saved[0].id_kid, server.identity.id_kid);
  assert.ok(saved[0].kdf.iterations >= 600000);
  const reopened = await unlockKeystore(saved[0], PASS);
  assert.equal(reopened.idKid, server.identity.id_kid);
  assert.equal(reopened.encKid, v1keys.encKid);
  const put = log[1][1];
  assert.equal(put.upgrade.sig_kid, v1keys.sigKid);
  assert.ok(await P.verifyIdentityUpgrade(v1keys.sigPublic, ME.id, server.identity.id_kid, put.upgrade));
  assert.ok(!('replace' in put));
  const idPublic = await P.importIdentityKey(P.b64decode(server.identity.id_spki));
  assert.ok(await P.verifyDeviceCert(idPublic, ME.id, v1keys.encKid, v1keys.sigKid, server.cert));
  assert.equal(outcome.keys.idKid, server.identity.id_kid);
  assert.equal(outcome.keys.encPrivate.extractable, false, 'device keys stay non-extractable in memory');
});

test('an account that already has an identity: the v1 device links with its own keys', async () => {
  const other = await P.generateIdentityKey(2048);
  server = { identity: await identityBody(other), cert: null, revoked: null };
  fake();
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  const outcome = await reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async () => log.push(['save']) });
  assert.equal(outcome.state, 'link');
  assert.equal(outcome.keys.encKid, v1keys.encKid);
  assert.deepEqual(log, [], 'nothing may be published or stored');
});

test('an identity that fails its checks is refused, nothing published', async () => {
  const other = await P.generateIdentityKey(2048);
  server = { identity: { ...(await identityBody(other)), proof: P.b64encode(new Uint8Array(256)) }, cert: null, revoked: null };
  fake();
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  await assert.rejects(reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async () => log.push(['save']) }), (e) => e instanceof ApiError && e.code === 'bad_identity');
  assert.deepEqual(log, []);
});

test('an upgrade interrupted after the keystore was stored finishes on the next unlock', async () => {
  server = { identity: null, cert: null, revoked: null, failPut: true };
  fake();
  const saved = [];
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  await assert.rejects(reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async (r) => saved.push(r) }));
  assert.equal(saved.length, 1);
  server.failPut = false;
  const again = await unlockKeystore(saved[0], PASS, { extractable: true });
  const outcome = await reconcile({ me: ME, record: saved[0], keys: again, passphrase: PASS, save: async (r) => saved.push(r) });
  assert.equal(outcome.state, 'ready');
  assert.equal(saved.length, 1, 'the stored identity is reused, not replaced');
  assert.equal(server.identity.id_kid, saved[0].id_kid);
  assert.ok(server.cert);
});

test('a revoked device starts over', async () => {
  server = { identity: null, cert: null, revoked: new Date().toISOString() };
  fake();
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  assert.deepEqual(await reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async () => log.push(['save']) }), { state: 'gone', status: 'revoked' });
  assert.deepEqual(log, []);
});

test('an identity made elsewhere while this device upgraded: it links instead', async () => {
  server = { identity: null, cert: null, revoked: null };
  fake();
  const other = await P.generateIdentityKey(2048);
  const racing = await identityBody(other);
  const put = api.putIdentity;
  api.putIdentity = async (body) => {
    server.identity = racing; // the other device was quicker
    return put(body);
  };
  const keys = await unlockKeystore(v1record, PASS, { extractable: true });
  const outcome = await reconcile({ me: ME, record: v1record, keys, passphrase: PASS, save: async () => log.push(['save']) });
  assert.equal(outcome.state, 'link');
  assert.equal(server.identity.id_kid, other.kid);
  assert.ok(!log.some((e) => e[0] === 'cert'));
});
