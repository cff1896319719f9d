// A malicious server against the browser's identity code (static/chat: identity.js,
// trust.js, directory.js, link.js, safety.js) under node: the server's identity and
// device listings are faked by replacing api methods. Whatever it lists, this device
// must encrypt only to devices certified by an accepted identity, take as genuine only
// messages from such devices, and tell the person plainly when something is off.
// Run by tests/adversarial/test_browser_modules.py (or `node --test` on this file).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../../static/chat/protocol.js';
import { api, ApiError } from '../../../static/chat/api.js';
import { Directory, IdentityPendingError } from '../../../static/chat/directory.js';
import { Trust } from '../../../static/chat/trust.js';
import { LinkError, LinkInbox, completeLink, requestLink } from '../../../static/chat/link.js';
import { safetyWith } from '../../../static/chat/safety.js';

const BITS = 2048;
const EARLIER = new Date(Date.now() - 86400000).toISOString();
const ME = { id: 1, username: 'alice' };
const IDS = { alice: 1, bob: 2, carol: 3, dave: 4, vic: 5, wes: 6, erin: 7 };
const CONV = 40;

let K; // name -> device keys (with identity for upgraded users)
let server; // username -> {identity, previous, devices}
let nextDevice = 100;
let nextMessage = 1000;

function memoryStorage() {
  const data = new Map();
  return { data, get: async (k) => structuredClone(data.get(k)), set: async (k, v) => void data.set(k, structuredClone(v)) };
}

async function identityBody(userId, pair, { upgrade = null, created = EARLIER, replaced } = {}) {
  return {
    id_spki: P.b64encode(pair.spki),
    id_kid: pair.kid,
    proof: await P.signIdentityProof(pair, userId),
    upgrade,
    created,
    ...(replaced ? { replaced } : {}),
  };
}

async function deviceRecord(userId, keys, { identity = null, cert, proofKeys = keys, id = nextDevice++, created = EARLIER, revoked = null } = {}) {
  return {
    id,
    name: `device ${id}`,
    enc_spki: P.b64encode(keys.encSpki),
    sig_spki: P.b64encode(keys.sigSpki),
    enc_kid: keys.encKid,
    sig_kid: keys.sigKid,
    proof: await P.signDeviceProof(proofKeys, userId),
    cert: cert !== undefined ? cert : identity ? await P.signDeviceCert(identity, userId, keys.encKid, keys.sigKid) : null,
    created,
    revoked,
  };
}

async function message(sender, keys, deviceId, recipients, text, { v = 2 } = {}) {
  const clientMsgId = P.newClientMsgId();
  const recipientKeys = Object.fromEntries(recipients.map((k) => [k.encKid, k.encPublic]));
  const common = { plaintext: P.textMessage(text), conversationId: CONV, senderId: IDS[sender], clientMsgId, senderKeys: keys, recipientKeys };
  const envelope = v === 1 ? await P.sealEnvelopeV1(common) : await P.sealEnvelope({ ...common, n: nextMessage, head: '' });
  return {
    id: nextMessage++, conversation: CONV, seq: nextMessage, sender, sender_id: IDS[sender],
    sender_device: deviceId, client_msg_id: clientMsgId, created: new Date().toISOString(), envelope,
  };
}

function fakeServer() {
  api.userIdentity = async (username) => {
    const u = server[username];
    if (!u) throw new ApiError(404, 'not_found', 'No such user.');
    return { user: { id: IDS[username] ?? u.id, username }, identity: u.identity, previous: u.previous ?? [] };
  };
  api.userDevices = async (username) => {
    const u = server[username];
    if (!u) throw new ApiError(404, 'not_found', 'No such user.');
    return { user: { id: IDS[username] ?? u.id, username }, devices: structuredClone(u.devices) };
  };
  api.keyOwner = async (kid) => {
    for (const [username, u] of Object.entries(server)) {
      const device = u.devices.find((d) => d.enc_kid === kid || d.sig_kid === kid);
      if (device) return { device, user: { id: IDS[username], username } };
    }
    throw new ApiError(404, 'not_found', 'No device holds this key.');
  };
}

/** A fresh view of alice's browser: its own trust state and directory. */
async function aliceDevice({ revoked = [] } = {}) {
  const trust = await new Trust(ME.id, { storage: memoryStorage(), revokeDevice: async (id) => revoked.push(id) }).load();
  await trust.pinSelf(ME, K.alice.idKid);
  return { trust, directory: new Directory({ me: ME, trust }) };
}

async function opens(directory, m, keys) {
  const sender = await directory.senderKey(m);
  if (!sender) return null;
  const plain = await P.openEnvelope(m.envelope, {
    conversationId: m.conversation, senderId: m.sender_id, clientMsgId: m.client_msg_id, deviceKeys: keys, sigPublic: sender.key,
  });
  return { text: plain.text, note: sender.note };
}

before(async () => {
  const names = ['alice', 'alice2', 'bob', 'carol', 'dave', 'vic', 'wes', 'erin', 'mallory', 'other'];
  const made = await Promise.all(names.map(() => P.generateDeviceKeys(BITS)));
  const identities = await Promise.all(names.map(() => P.generateIdentityKey(BITS)));
  K = {};
  for (const [i, name] of names.entries()) K[name] = ['vic', 'wes', 'mallory', 'other'].includes(name) ? made[i] : await made[i].withIdentity(identities[i]);
  K.ids = Object.fromEntries(names.map((n, i) => [n, identities[i]]));
  K.alice2 = made[1]; // a browser that wants to be linked: no identity yet
  server = {};
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    server[name] = {
      identity: await identityBody(IDS[name], K[name].identity),
      previous: [],
      devices: [await deviceRecord(IDS[name], K[name], { identity: K[name].identity, id: IDS[name] * 10 + 1 })],
    };
  }
  for (const name of ['vic', 'wes']) {
    server[name] = { identity: null, previous: [], devices: [await deviceRecord(IDS[name], K[name], { id: IDS[name] * 10 + 1 })] };
  }
  fakeServer();
});

test('a sound listing: certified devices are encrypted to and their messages open', async () => {
  const { directory, trust } = await aliceDevice();
  const { keys, problems } = await directory.recipientsOf(['alice', 'bob']);
  assert.deepEqual(problems, []);
  assert.deepEqual(Object.keys(keys).sort(), [K.alice.encKid, K.bob.encKid].sort());
  const m = await message('bob', K.bob, 21, [K.alice, K.bob], 'genuine');
  assert.deepEqual(await opens(directory, m, K.alice), { text: 'genuine', note: null });
  assert.deepEqual(trust.noticesFor(['alice', 'bob']), []);
});

test('a device injected with a valid proof and no cert: never encrypted to, not trusted, a warning', async () => {
  const saved = structuredClone(server.bob.devices);
  const injected = await deviceRecord(IDS.bob, K.mallory, { cert: null });
  const copied = await deviceRecord(IDS.bob, K.other, { cert: saved[0].cert }); // a real cert of another device
  server.bob.devices.push(injected, copied);
  try {
    const { directory, trust } = await aliceDevice();
    const { keys, problems } = await directory.recipientsOf(['alice', 'bob']);
    assert.ok(!(K.mallory.encKid in keys) && !(K.other.encKid in keys), 'encrypted to an uncertified device');
    assert.deepEqual(problems.map((p) => [p.kind, p.username, p.deviceId]).sort(), [
      ['uncertified_device', 'bob', injected.id], ['uncertified_device', 'bob', copied.id]].sort());
    for (const [keys2, device] of [[K.mallory, injected], [K.other, copied]]) {
      const m = await message('bob', keys2, device.id, [K.alice], 'from the server');
      assert.equal(await directory.senderKey(m), null, 'an uncertified device’s message was taken as genuine');
    }
    const notices = trust.noticesFor(['bob']);
    assert.equal(notices.length, 2);
    for (const notice of notices) {
      assert.equal(notice.kind, 'uncertified_device');
      assert.ok(notice.blocking);
      assert.match(notice.text, /bob’s account lists a device that bob’s identity did not certify/);
    }
  } finally {
    server.bob.devices = saved;
  }
});

test('a device listed under a new id with the server’s key: the same', async () => {
  const saved = structuredClone(server.bob.devices);
  const { directory, trust } = await aliceDevice();
  assert.deepEqual((await directory.recipientsOf(['bob'])).problems, []);
  // the real device is retired; the server's key is listed under a new id, with the real cert copied
  server.bob.devices = [
    { ...saved[0], revoked: new Date().toISOString() },
    await deviceRecord(IDS.bob, K.mallory, { cert: saved[0].cert }),
  ];
  try {
    const { keys, problems } = await directory.recipientsOf(['bob'], { force: true });
    assert.deepEqual(keys, {}, 'encrypted to the server’s key');
    assert.deepEqual(problems.map((p) => p.kind), ['uncertified_device']);
    const m = await message('bob', K.mallory, server.bob.devices[1].id, [K.alice], 'mitm');
    assert.equal(await directory.senderKey(m), null);
    assert.equal(trust.noticesFor(['bob'])[0].kind, 'uncertified_device');
  } finally {
    server.bob.devices = saved;
  }
});

test('an identity substituted for a known contact: a blocking identity change', async () => {
  const saved = structuredClone(server.bob);
  const { directory, trust } = await aliceDevice();
  assert.deepEqual((await directory.recipientsOf(['bob'])).problems, []);
  const fake = K.ids.mallory;
  server.bob = {
    identity: await identityBody(IDS.bob, fake),
    previous: [],
    devices: [await deviceRecord(IDS.bob, K.mallory, { identity: fake })],
  };
  try {
    const { keys, problems } = await directory.recipientsOf(['bob'], { force: true });
    assert.deepEqual(keys, {}, 'encrypted under an identity that was not accepted');
    assert.deepEqual(problems.map((p) => [p.kind, p.username]), [['identity_changed', 'bob']]);
    const m = await message('bob', K.mallory, server.bob.devices[0].id, [K.alice], 'new identity');
    assert.equal(await directory.senderKey(m), null);
    // a roster record by the new identity's device waits for the person: not a bad signature
    await assert.rejects(directory.recordSigner(IDS.bob, K.mallory.sigKid), (e) => e instanceof IdentityPendingError && e.userId === IDS.bob);
    const [notice] = trust.noticesFor(['bob']);
    assert.equal(notice.kind, 'identity_changed');
    assert.ok(notice.blocking);
    assert.match(notice.text, /safety number changed.*paused/s);
    const safety = await safetyWith({ me: ME, myIdKid: K.alice.idKid, directory, trust }, 'bob');
    assert.equal(safety.state, 'changed');
    assert.equal(safety.number, await P.safetyNumber(1, K.alice.idKid, 2, K.bob.idKid));
    assert.equal(safety.pending.number, await P.safetyNumber(1, K.alice.idKid, 2, fake.kid));
    // only the person's acceptance lets messages go to it
    await notice.actions.find((a) => a.label.startsWith('Accept')).run();
    const after = await directory.recipientsOf(['bob']);
    assert.deepEqual(after.problems, []);
    assert.deepEqual(Object.keys(after.keys), [K.mallory.encKid]);
    assert.ok(await directory.recordSigner(IDS.bob, K.mallory.sigKid));
    assert.equal(trust.isVerified(IDS.bob), false);
  } finally {
    server.bob = saved;
  }
});

test('an identity substituted for a new contact: accepted on first use, and the safety number shows it', async () => {
  const saved = structuredClone(server.dave);
  const fake = K.ids.mallory;
  server.dave = { identity: await identityBody(IDS.dave, fake), previous: [], devices: [await deviceRecord(IDS.dave, K.mallory, { identity: fake })] };
  try {
    const { directory, trust } = await aliceDevice();
    const { keys, problems } = await directory.recipientsOf(['dave']);
    assert.deepEqual(problems, []);
    assert.deepEqual(Object.keys(keys), [K.mallory.encKid]);
    const safety = await safetyWith({ me: ME, myIdKid: K.alice.idKid, directory, trust }, 'dave');
    assert.equal(safety.state, 'accepted');
    assert.equal(safety.number, await P.safetyNumber(1, K.alice.idKid, 4, fake.kid));
    assert.notEqual(safety.number, await P.safetyNumber(1, K.alice.idKid, 4, K.dave.idKid), 'the number hides the substitution');
    assert.equal(safety.formatted.split(' ').length, 12);
  } finally {
    server.dave = saved;
  }
});

test('a new device shown a fake identity of its own user: the codes differ and no approval hands it a matching key', async () => {
  const fake = K.ids.mallory;
  const savedIdentity = server.alice.identity;
  let posted = null;
  api.createLinkRequest = async (body) => {
    posted = body;
    const encKid = await P.computeKid(P.b64decode(body.enc_spki));
    const sigKid = await P.computeKid(P.b64decode(body.sig_spki));
    return { link_request: { id: 7, ...body, enc_kid: encKid, sig_kid: sigKid, status: 'pending', created: new Date().toISOString(), expires: new Date(Date.now() + 600000).toISOString() } };
  };
  server.alice.identity = await identityBody(IDS.alice, fake); // what the new browser is shown
  let link;
  try {
    link = await requestLink({ me: ME, name: 'new browser', keys: K.alice2 });
  } finally {
    server.alice.identity = savedIdentity;
  }
  assert.equal(link.idKid, fake.kid);
  // the real device computes the code from the request's kids and its own identity
  const { trust } = await aliceDevice();
  const inbox = new LinkInbox({ me: ME, deviceId: 11, keys: K.alice, trust });
  await inbox.add({ ...posted, id: 7, enc_kid: K.alice2.encKid, sig_kid: K.alice2.sigKid, status: 'pending', expires: new Date(Date.now() + 600000).toISOString() });
  const entry = inbox.get(7);
  assert.ok(entry.valid);
  assert.notEqual(entry.code, link.code, 'the two screens show the same code');
  assert.ok(!P.sameLinkCode(entry.code, link.code));
  // even if the person approves anyway, the key handed over is not the one the new device expects
  let approval = null;
  api.approveLinkRequest = async (id, body) => {
    approval = body;
    return { device: { id: 12, name: 'new browser', enc_kid: K.alice2.encKid, sig_kid: K.alice2.sigKid, cert: body.cert, created: new Date().toISOString(), revoked: null } };
  };
  const { device } = await inbox.approve(7);
  const deleted = [];
  api.deleteLinkRequest = async (id) => void deleted.push(id);
  const storage = memoryStorage();
  await assert.rejects(
    completeLink({ me: ME, link, approved: { status: 'approved', device, id_wrap: approval.id_wrap }, passphrase: 'x'.repeat(20), storage }),
    (error) => error instanceof LinkError && error.code === 'wrong_identity',
  );
  assert.equal(storage.data.size, 0, 'trust was adopted from a refused approval');
  assert.deepEqual(deleted, [7], 'the approved request (with its wrap) is deleted');
  // and a cert made by the fake identity does not make the real wrap acceptable either
  const fakeCert = await P.signDeviceCert(fake, IDS.alice, K.alice2.encKid, K.alice2.sigKid);
  await assert.rejects(
    completeLink({ me: ME, link, approved: { status: 'approved', device: { ...device, cert: fakeCert }, id_wrap: approval.id_wrap }, passphrase: 'x'.repeat(20), storage }),
    (error) => error instanceof LinkError && error.code === 'wrong_identity',
  );
  // a wrap made for other keys does not open at all
  const otherWrap = await P.makeIdWrap(K.alice.identity, trust.exportState(), { userId: IDS.alice, encPublic: K.other.encPublic, sigKid: K.other.sigKid });
  await assert.rejects(
    completeLink({ me: ME, link, approved: { status: 'approved', device, id_wrap: otherWrap }, passphrase: 'x'.repeat(20), storage }),
    (error) => error instanceof LinkError && error.code === 'bad_wrap',
  );
});

test('the link codes match when the new device was shown the real identity', async () => {
  let posted = null;
  api.createLinkRequest = async (body) => {
    posted = body;
    return { link_request: { id: 8, ...body, enc_kid: K.alice2.encKid, sig_kid: K.alice2.sigKid, status: 'pending', expires: new Date(Date.now() + 600000).toISOString() } };
  };
  const link = await requestLink({ me: ME, name: 'new browser', keys: K.alice2 });
  const { trust } = await aliceDevice();
  const inbox = new LinkInbox({ me: ME, deviceId: 11, keys: K.alice, trust });
  await inbox.add({ ...posted, id: 8, enc_kid: K.alice2.encKid, sig_kid: K.alice2.sigKid, status: 'pending', expires: new Date(Date.now() + 600000).toISOString() });
  assert.equal(inbox.get(8).code, link.code);
  // a request whose proof was made by other keys cannot be approved
  await inbox.add({ ...posted, id: 9, proof: await P.signDeviceProof(K.other, IDS.alice), enc_kid: K.alice2.encKid, sig_kid: K.alice2.sigKid, status: 'pending', expires: new Date(Date.now() + 600000).toISOString() });
  assert.equal(inbox.get(9).valid, false);
  await assert.rejects(inbox.approve(9), (error) => error instanceof LinkError && error.code === 'invalid');
});

test('a v1 contact’s identity planted without a valid upgrade signature: an identity change', async (t) => {
  const { directory, trust } = await aliceDevice();
  // first seen not upgraded: its devices are used as in v1, shown as "not upgraded"
  const first = await directory.recipientsOf(['vic']);
  assert.deepEqual(first.problems, []);
  assert.deepEqual(Object.keys(first.keys), [K.vic.encKid]);
  assert.deepEqual(trust.noticesFor(['vic']).map((n) => [n.kind, n.blocking]), [['not_upgraded', false]]);
  const m1 = await message('vic', K.vic, server.vic.devices[0].id, [K.alice], 'old style', { v: 1 });
  assert.deepEqual(await opens(directory, m1, K.alice), { text: 'old style', note: 'not_upgraded' });
  const planted = K.ids.mallory;
  const saved = structuredClone(server.vic);
  t.after(() => {
    server.vic = saved;
  });
  for (const upgrade of [null, await P.signIdentityUpgrade(K.mallory, IDS.vic, planted.kid), { sig_kid: K.vic.sigKid, sig: (await P.signIdentityUpgrade(K.mallory, IDS.vic, planted.kid)).sig }]) {
    server.vic.identity = await identityBody(IDS.vic, planted, { upgrade });
    server.vic.devices = [await deviceRecord(IDS.vic, K.mallory, { identity: planted, id: 51 }), { ...(await deviceRecord(IDS.vic, K.vic, { id: 52 })) }];
    const { keys, problems } = await directory.recipientsOf(['vic'], { force: true });
    assert.deepEqual(keys, {}, `accepted a planted identity (upgrade ${JSON.stringify(upgrade)?.slice(0, 40)})`);
    assert.deepEqual(problems.map((p) => p.kind), ['identity_changed']);
    assert.equal(trust.noticesFor(['vic'])[0].kind, 'identity_changed');
  }
});

test('a v1 contact’s genuine upgrade (signed by the v1 device this browser knew) is accepted without a warning', async () => {
  const { directory, trust } = await aliceDevice();
  assert.deepEqual((await directory.recipientsOf(['wes'])).problems, []);
  const identity = K.ids.wes;
  const upgrade = await P.signIdentityUpgrade(K.wes, IDS.wes, identity.kid);
  server.wes.identity = await identityBody(IDS.wes, identity, { upgrade });
  server.wes.devices = [await deviceRecord(IDS.wes, K.wes, { identity, id: server.wes.devices[0].id })];
  const { keys, problems } = await directory.recipientsOf(['wes'], { force: true });
  assert.deepEqual(problems, []);
  assert.deepEqual(Object.keys(keys), [K.wes.encKid]);
  assert.deepEqual(trust.noticesFor(['wes']), []);
  assert.equal(trust.record(IDS.wes).id_kid, identity.kid);
});

test('an uncertified device on my own account: a prominent alert with “Revoke it”', async () => {
  const saved = structuredClone(server.alice.devices);
  const sneaky = await deviceRecord(IDS.alice, K.mallory, { cert: null });
  server.alice.devices.push(sneaky);
  try {
    const revoked = [];
    const { directory, trust } = await aliceDevice({ revoked });
    const { keys, problems } = await directory.recipientsOf(['alice', 'bob']);
    assert.ok(!(K.mallory.encKid in keys));
    assert.deepEqual(problems.map((p) => [p.kind, p.deviceId]), [['own_uncertified_device', sneaky.id]]);
    const [notice] = trust.noticesFor(['alice', 'bob']);
    assert.equal(notice.kind, 'own_uncertified_device');
    assert.ok(notice.blocking);
    const revoke = notice.actions.find((a) => a.label === 'Revoke it');
    await revoke.run();
    assert.deepEqual(revoked, [sneaky.id]);
    assert.equal(await directory.senderKey(await message('alice', K.mallory, sneaky.id, [K.alice], 'me?')), null);
  } finally {
    server.alice.devices = saved;
  }
});

test('earlier identities verify old messages, shown as such; a listed previous identity that fails its proof does not', async () => {
  const saved = structuredClone(server.erin);
  const { directory } = await aliceDevice();
  const old = K.ids.erin;
  const fresh = K.ids.other;
  const newKeys = await K.other.withIdentity(fresh).catch(() => null) ?? K.other;
  const oldDevice = { ...server.erin.devices[0], revoked: new Date(Date.now() + 60000).toISOString() };
  server.erin = {
    identity: await identityBody(IDS.erin, fresh),
    previous: [await identityBody(IDS.erin, old, { replaced: new Date().toISOString() })],
    devices: [oldDevice, await deviceRecord(IDS.erin, newKeys, { identity: fresh, id: 72 })],
  };
  try {
    // first sight is of the new identity (the old one was never accepted here)
    assert.deepEqual((await directory.recipientsOf(['erin'])).problems, []);
    const m = await message('erin', K.erin, oldDevice.id, [K.alice], 'before the reset');
    assert.deepEqual(await opens(directory, m, K.alice), { text: 'before the reset', note: 'earlier_identity' });
    assert.ok(await directory.recordSigner(IDS.erin, K.erin.sigKid), 'a record signed under an earlier identity');
    // a "previous" identity whose proof fails certifies nothing
    server.erin.previous = [{ ...(await identityBody(IDS.erin, old)), proof: (await identityBody(IDS.erin, fresh)).proof }];
    await directory.load('erin', { force: true });
    assert.equal(await directory.senderKey(m), null);
    assert.equal(await directory.recordSigner(IDS.erin, K.erin.sigKid), null);
  } finally {
    server.erin = saved;
  }
});

test('a known name answered by another account is an identity change', async () => {
  const { directory, trust } = await aliceDevice();
  await directory.recipientsOf(['carol']);
  const saved = structuredClone(server.carol);
  const realId = IDS.carol;
  IDS.carol = 99;
  server.carol = { identity: await identityBody(99, K.ids.mallory), previous: [], devices: [await deviceRecord(99, K.mallory, { identity: K.ids.mallory })] };
  try {
    const { keys, problems } = await directory.recipientsOf(['carol'], { force: true });
    assert.deepEqual(keys, {});
    assert.deepEqual(problems.map((p) => p.kind), ['identity_changed']);
    assert.match(trust.noticesFor(['carol'])[0].text, /different account/);
  } finally {
    IDS.carol = realId;
    server.carol = saved;
  }
});

test('an identity that fails its proof cannot be accepted and blocks sending', async () => {
  const { directory, trust } = await aliceDevice();
  await directory.recipientsOf(['dave']);
  const saved = structuredClone(server.dave);
  server.dave.identity = { ...server.dave.identity, proof: server.bob.identity.proof };
  try {
    const { keys, problems } = await directory.recipientsOf(['dave'], { force: true });
    assert.deepEqual(keys, {});
    assert.deepEqual(problems.map((p) => p.kind), ['identity_changed']);
    const [notice] = trust.noticesFor(['dave']);
    assert.ok(!notice.actions.some((a) => a.label.startsWith('Accept')));
    await trust.accept(IDS.dave);
    assert.ok(trust.isBlocked(IDS.dave));
  } finally {
    server.dave = saved;
  }
});

test('the trust state handed to a linked device carries accepted identities and verified marks', async () => {
  const { directory, trust } = await aliceDevice();
  await directory.recipientsOf(['bob', 'carol', 'vic']);
  await trust.setVerified(IDS.bob, true);
  const state = P.checkTrustState(trust.exportState());
  assert.deepEqual(state.identities[String(IDS.bob)], { id_kid: K.bob.idKid, verified: true });
  assert.deepEqual(state.identities[String(IDS.carol)], { id_kid: K.carol.idKid, verified: false });
  assert.ok(!(String(IDS.vic) in state.identities), 'a user not upgraded has no identity to hand over');
  const other = await new Trust(ME.id, { storage: memoryStorage() }).load();
  await other.adopt(state);
  assert.equal(other.isVerified(IDS.bob), true);
  assert.equal(other.record(IDS.carol).id_kid, K.carol.idKid);
  // the adopted decisions apply when the new device first loads those users
  await other.pinSelf(ME, K.alice.idKid);
  const fresh = new Directory({ me: ME, trust: other });
  assert.deepEqual((await fresh.recipientsOf(['bob', 'carol'])).problems, []);
  assert.equal(other.userIdOf('bob'), IDS.bob);
  assert.equal(other.isVerified(IDS.bob), true);
});
