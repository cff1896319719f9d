// static/chat/protocol.js: encodings, keys, proofs, envelopes (v2 and v1), identity keys,
// certificates, upgrade signatures, link codes, id_wrap, safety numbers, history rewraps,
// and every Python-made vector of them (opened, verified, reproduced, tampers refused).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../static/chat/protocol.js';
import { fixedKeys, flip, jsContext, mixedDevice, vector } from './helpers.mjs';

const subtle = globalThis.crypto.subtle;
const CMID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const CONTEXT = { conversationId: 7, senderId: 1, clientMsgId: CMID };
const HEAD = 'ab'.repeat(32);
let keys;

before(async () => {
  keys = await fixedKeys();
});

const rejectsWith = (code) => (error) => error instanceof P.ProtocolError && error.code === code;

describe('base64', () => {
  test('round trips', () => {
    for (const data of [[], [102], [102, 111], [102, 111, 111], Array.from({ length: 256 }, (_, i) => i)]) {
      assert.deepEqual(Array.from(P.b64decode(P.b64encode(new Uint8Array(data)))), data);
    }
    assert.equal(P.b64encode(new Uint8Array(100000)).length, 133336);
  });

  test('rejects anything but canonical padded standard base64', () => {
    for (const text of ['Zg', 'Zg=', 'Zm9v\n', ' Zm9v', 'Zm 9v', '-_-_', 'Zh==', 'Zm9=', 'Zg==Zg==', 'Zg===', 'é', 5, null]) {
      assert.throws(() => P.b64decode(text), rejectsWith('bad_request'), String(text));
    }
  });

  test('checks the length', () => {
    assert.deepEqual(Array.from(P.b64decode('Zm9v', 3)), [102, 111, 111]);
    assert.throws(() => P.b64decode('Zm9v', 4), rejectsWith('bad_request'));
  });
});

describe('ids and strings', () => {
  test('client message ids', () => {
    const made = P.newClientMsgId();
    assert.ok(P.isClientMsgId(made) && made[14] === '4');
    assert.ok(P.isClientMsgId(CMID));
    for (const bad of [CMID.toUpperCase(), CMID.replaceAll('-', ''), `{${CMID}}`, `${CMID} `, null, 7]) {
      assert.equal(P.isClientMsgId(bad), false);
    }
  });

  test('gids, counters and heads', () => {
    assert.ok(P.isUuid4(crypto.randomUUID()) && P.isUuid4(CMID));
    for (const bad of [CMID.toUpperCase(), `${CMID.slice(0, 14)}5${CMID.slice(15)}`, 7, null]) assert.equal(P.isUuid4(bad), false);
    assert.ok(P.isCounter(1) && P.isCounter(2 ** 53 - 1));
    for (const bad of [0, -1, 2 ** 53, 1.5, true, '1', null]) assert.equal(P.isCounter(bad), false, String(bad));
    assert.ok(P.isHead('') && P.isHead(HEAD));
    for (const bad of [HEAD.toUpperCase(), HEAD.slice(1), null, 0, ' ']) assert.equal(P.isHead(bad), false);
  });

  test('message aad (v2 and v1) and signed string', () => {
    const kid = 'c'.repeat(64);
    const aad = P.messageAad(7, 1, CMID, kid, 17, HEAD);
    assert.equal(aad, `e2ee-chat/v2/msg|7|1|${CMID}|${kid}|17|${HEAD}`);
    assert.equal(P.messageAad(7, 1, CMID, kid, 1, ''), `e2ee-chat/v2/msg|7|1|${CMID}|${kid}|1|`);
    assert.equal(P.messageAadV1(7, 1, CMID), `e2ee-chat/v1/msg|7|1|${CMID}`);
    assert.equal(new TextDecoder().decode(P.signedString(aad, 'aXY=', 'Y3Q=', 'a2M=')), `${aad}|aXY=|Y3Q=|a2M=`);
    for (const args of [['7', 1, CMID, kid, 1, ''], [7, 1.5, CMID, kid, 1, ''], [7, 1, CMID.toUpperCase(), kid, 1, ''],
      [7, 1, CMID, kid.toUpperCase(), 1, ''], [7, 1, CMID, kid, 0, ''], [7, 1, CMID, kid, 1, 'x']]) {
      assert.throws(() => P.messageAad(...args), rejectsWith('bad_request'));
    }
    for (const args of [['7', 1, CMID], [7, 1.5, CMID], [7, 1, CMID.toUpperCase()]]) {
      assert.throws(() => P.messageAadV1(...args), rejectsWith('bad_request'));
    }
    assert.equal(P.envelopeAad({ v: 2, sig_kid: kid, n: 17, head: HEAD }, 7, 1, CMID), aad);
    assert.equal(P.envelopeAad({ v: 1 }, 7, 1, CMID), P.messageAadV1(7, 1, CMID));
  });

  test('text message cap counts code points', () => {
    assert.deepEqual(P.textMessage('hi'), { type: 'text', text: 'hi' });
    assert.equal(P.textMessage('👋'.repeat(16000)).text.length, 32000);
    assert.throws(() => P.textMessage('x'.repeat(16001)), rejectsWith('too_large'));
  });
});

describe('keys', () => {
  test('fixed keys match the stored spki and kids', async () => {
    const stored = vector('keys.json');
    for (const [name, device] of Object.entries(keys)) {
      assert.equal(P.b64encode(device.encSpki), stored[name].enc_spki);
      assert.equal(P.b64encode(device.sigSpki), stored[name].sig_spki);
      assert.equal(device.encKid, stored[name].enc_kid);
      assert.equal(await P.computeKid(device.sigSpki), stored[name].sig_kid);
    }
  });

  test('generated keys are extractable, canonical and distinct', async () => {
    const device = await P.generateDeviceKeys(2048);
    assert.equal(device.encPrivate.extractable, true);
    assert.equal(device.encPrivate.algorithm.modulusLength, 2048);
    assert.notEqual(device.encKid, device.sigKid);
    const imported = await P.importEncryptionKey(device.encSpki);
    assert.deepEqual(await P.spkiOf(imported), device.encSpki);
    await assert.rejects(P.generateDeviceKeys(1024), RangeError);
  });

  test('pkcs8 import is non-extractable by default and refuses a reused key', async () => {
    const stored = vector('keys.json').alice;
    const enc = P.b64decode(stored.enc_pkcs8);
    const sig = P.b64decode(stored.sig_pkcs8);
    const id = P.b64decode(stored.id_pkcs8);
    const device = await P.deviceKeysFromPkcs8(enc, sig);
    assert.equal(device.encPrivate.extractable, false);
    assert.equal(device.sigPrivate.extractable, false);
    assert.equal(device.encKid, stored.enc_kid);
    assert.deepEqual([device.idPrivate, device.idPublic, device.idSpki, device.idKid, device.identity], [null, null, null, null, null]);
    const v2 = await P.deviceKeysFromPkcs8(enc, sig, id);
    assert.equal(v2.idKid, stored.id_kid);
    assert.equal(v2.idPrivate.extractable, false);
    assert.equal(P.b64encode(v2.idSpki), stored.id_spki);
    assert.equal((await P.deviceKeysFromPkcs8(enc, sig, id, { extractable: true })).idPrivate.extractable, true);
    assert.equal((await P.deviceKeysFromPkcs8(enc, sig, { extractable: true })).encPrivate.extractable, true);
    for (const args of [[enc, enc], [new Uint8Array([1, 2]), enc], [enc, sig, sig], [enc, sig, enc], [enc, sig, new Uint8Array(3)]]) {
      await assert.rejects(P.deviceKeysFromPkcs8(...args), rejectsWith('invalid_key'));
    }
  });

  test('identity keys: generated, imported, held by a device', async () => {
    const stored = vector('keys.json');
    const pair = await P.identityKeyFromPkcs8(P.b64decode(stored.bob.id_pkcs8));
    assert.equal(pair.kid, stored.bob.id_kid);
    assert.equal(P.b64encode(pair.spki), stored.bob.id_spki);
    assert.equal(pair.privateKey.extractable, false);
    assert.equal(pair.privateKey.algorithm.name, 'RSA-PSS');
    await assert.rejects(P.identityKeyFromPkcs8(P.b64decode(stored.bob.id_spki)), rejectsWith('invalid_key'));
    const imported = await P.importIdentityKey(pair.spki);
    assert.equal(await P.kidOf(imported), pair.kid);
    const fresh = await P.generateIdentityKey(2048);
    assert.equal(fresh.privateKey.extractable, true);
    assert.equal(fresh.kid, await P.computeKid(fresh.spki));
    await assert.rejects(P.generateIdentityKey(1024), RangeError);
    const v1 = await mixedDevice('alice', 'alice');
    const upgraded = await v1.withIdentity(pair);
    assert.equal(upgraded.idKid, stored.bob.id_kid);
    assert.deepEqual([upgraded.encKid, upgraded.sigKid], [v1.encKid, v1.sigKid]);
    assert.equal(upgraded.identity.kid, pair.kid);
    const ownSig = { privateKey: v1.sigPrivate, publicKey: v1.sigPublic };
    await assert.rejects(v1.withIdentity(ownSig), rejectsWith('invalid_key'));
  });

  test('import accepts canonical SPKI for both purposes', async () => {
    const enc = await P.importEncryptionKey(keys.bob.encSpki);
    const sig = await P.importSigningKey(keys.bob.sigSpki);
    assert.equal(enc.algorithm.name, 'RSA-OAEP');
    assert.equal(sig.algorithm.name, 'RSA-PSS');
  });

  test('import refuses other encodings, sizes, exponents and algorithms', async () => {
    const spki = keys.alice.encSpki;
    assert.equal(spki[1], 0x82);
    const longForm = new Uint8Array([0x30, 0x83, 0x00, ...spki.subarray(2)]);
    const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.alice.encPrivate));
    const small = await subtle.generateKey(
      { ...P.OAEP, modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['encrypt', 'decrypt']);
    const exp3 = await subtle.generateKey(
      { ...P.PSS, modulusLength: 2048, publicExponent: new Uint8Array([3]) }, true, ['sign', 'verify']);
    const ec = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const refused = [
      new Uint8Array([...spki, 0]),
      spki.subarray(0, -1),
      longForm,
      pkcs8,
      new Uint8Array(0),
      new Uint8Array(2000).fill(0x30),
      await P.spkiOf(small.publicKey),
      await P.spkiOf(exp3.publicKey),
      await P.spkiOf(ec.publicKey),
    ];
    for (const [i, bytes] of refused.entries()) {
      await assert.rejects(P.importEncryptionKey(bytes), rejectsWith('invalid_key'), `case ${i}`);
      await assert.rejects(P.importSigningKey(bytes), rejectsWith('invalid_key'), `case ${i}`);
    }
    await assert.rejects(P.importEncryptionKey(P.b64encode(spki)), rejectsWith('invalid_key'));
  });
});

describe('device proof', () => {
  test('round trip and binding', async () => {
    const { alice, bob } = keys;
    const proof = await P.signDeviceProof(alice, 1);
    assert.equal(
      new TextDecoder().decode(P.deviceProofMessage(1, alice.encKid, alice.sigKid)),
      `e2ee-chat/v1/device|1|${alice.encKid}|${alice.sigKid}`,
    );
    assert.equal(await P.verifyDeviceProof(alice.sigPublic, 1, alice.encKid, alice.sigKid, proof), true);
    assert.equal(await P.verifyDeviceProof(alice.sigPublic, 2, alice.encKid, alice.sigKid, proof), false);
    assert.equal(await P.verifyDeviceProof(alice.sigPublic, 1, bob.encKid, alice.sigKid, proof), false);
    assert.equal(await P.verifyDeviceProof(bob.sigPublic, 1, alice.encKid, alice.sigKid, proof), false);
    assert.equal(await P.verifyDeviceProof(alice.sigPublic, 1, alice.encKid, alice.sigKid, flip(proof)), false);
    await assert.rejects(P.verifyDeviceProof(alice.sigPublic, 1, alice.encKid, alice.sigKid, `${proof}\n`), rejectsWith('bad_request'));
  });

  test('the Python-made proof verifies', async () => {
    const v = vector('device_proof.json');
    const sigPublic = await P.importSigningKey(keys[v.device].sigSpki);
    assert.equal(await P.verifyDeviceProof(sigPublic, v.user_id, v.enc_kid, v.sig_kid, v.proof), true);
  });
});

describe('envelopes', () => {
  const recipients = (...names) => Object.fromEntries(names.map((n) => [keys[n].encKid, keys[n].encPublic]));
  const seal = (plaintext = P.textMessage('hello ✓'), { n = 17, head = HEAD } = {}) =>
    P.sealEnvelope({ plaintext, ...CONTEXT, n, head, senderKeys: keys.alice, recipientKeys: recipients('alice', 'bob') });
  const sealV1 = (plaintext = P.textMessage('hello ✓')) =>
    P.sealEnvelopeV1({ plaintext, ...CONTEXT, senderKeys: keys.alice, recipientKeys: recipients('alice', 'bob') });
  const openAs = (name, envelope, overrides = {}) =>
    P.openEnvelope(envelope, { ...CONTEXT, ...overrides, deviceKeys: keys[name], sigPublic: keys.alice.sigPublic });

  test('round trip for every recipient', async () => {
    const envelope = await seal();
    assert.deepEqual(Object.keys(envelope), P.ENVELOPE_FIELDS);
    assert.deepEqual([envelope.v, envelope.n, envelope.head], [2, 17, HEAD]);
    assert.equal(envelope.sig_kid, keys.alice.sigKid);
    P.validateEnvelope(envelope);
    for (const name of ['alice', 'bob']) {
      assert.deepEqual(await openAs(name, envelope), { type: 'text', text: 'hello ✓' });
    }
  });

  test('validateEnvelope checks v, n and head by themselves', async () => {
    const envelope = await seal();
    for (const [field, value] of [['n', 0], ['n', 2 ** 53], ['n', '17'], ['n', 1.5], ['n', true], ['head', 'x'], ['head', HEAD.toUpperCase()], ['head', null], ['v', 3], ['v', '2']]) {
      assert.throws(() => P.validateEnvelope({ ...envelope, [field]: value }), rejectsWith('bad_request'), `${field} ${value}`);
    }
    const { n, ...withoutN } = envelope;
    assert.throws(() => P.validateEnvelope(withoutN), rejectsWith('bad_request'));
    assert.throws(() => P.validateEnvelope({ ...envelope, v: 1 }), rejectsWith('bad_request'));
    assert.ok(n);
  });

  test('a direct envelope with an empty head opens', async () => {
    assert.equal((await openAs('bob', await seal(undefined, { n: 1, head: '' }))).text, 'hello ✓');
  });

  test('seal refuses a bad counter or head', async () => {
    for (const [n, head] of [[0, ''], [2 ** 53, ''], ['1', ''], [1, 'x'], [1, HEAD.toUpperCase()], [1, null]]) {
      await assert.rejects(seal(undefined, { n, head }), rejectsWith('bad_request'), `${n} ${head}`);
    }
  });

  test('v1 envelopes still open, and neither version stands for the other', async () => {
    const envelope = await sealV1();
    assert.deepEqual(Object.keys(envelope), P.ENVELOPE_FIELDS_V1);
    P.validateEnvelope(envelope);
    assert.equal((await openAs('bob', envelope)).text, 'hello ✓');
    const verify = (env) => P.verifyEnvelopeSignature(env, { ...CONTEXT, sigPublic: keys.alice.sigPublic });
    assert.equal(await verify(envelope), true);
    assert.equal(await verify({ ...envelope, v: 2, n: 1, head: '' }), false);
    const { n, head, ...v2rest } = await seal();
    assert.equal(await verify({ ...v2rest, v: 1 }), false);
    assert.ok(n && head);
  });

  test('keys cut down to the own entry still open', async () => {
    const envelope = await seal();
    const cut = { ...envelope, keys: { [keys.bob.encKid]: envelope.keys[keys.bob.encKid] } };
    assert.equal((await openAs('bob', cut)).text, 'hello ✓');
  });

  test('fresh content key and iv per message', async () => {
    const [first, second] = [await seal(), await seal()];
    assert.notEqual(first.iv, second.iv);
    assert.notEqual(first.kc, second.kc);
  });

  test('seal refuses a recipient key under another kid', async () => {
    await assert.rejects(
      P.sealEnvelope({ plaintext: {}, ...CONTEXT, n: 1, head: '', senderKeys: keys.alice, recipientKeys: { [keys.alice.encKid]: keys.bob.encPublic } }),
      rejectsWith('invalid_key'),
    );
  });

  test('verifyEnvelopeSignature', async () => {
    const envelope = await seal();
    const { alice, bob } = keys;
    assert.equal(await P.verifyEnvelopeSignature(envelope, { ...CONTEXT, sigPublic: alice.sigPublic }), true);
    assert.equal(await P.verifyEnvelopeSignature(envelope, { ...CONTEXT, senderId: 2, sigPublic: alice.sigPublic }), false);
    assert.equal(await P.verifyEnvelopeSignature(envelope, { ...CONTEXT, sigPublic: bob.sigPublic }), false);
    const renamed = { ...envelope, sig_kid: bob.sigKid };
    assert.equal(await P.verifyEnvelopeSignature(renamed, { ...CONTEXT, sigPublic: alice.sigPublic }), false);
    assert.throws(() => P.validateEnvelope({ ...envelope, extra: 1 }), rejectsWith('bad_request'));
  });

  const tampers = {
    iv: (env) => ({ ...env, iv: flip(env.iv) }),
    ct: (env) => ({ ...env, ct: flip(env.ct) }),
    ct_tag: (env) => ({ ...env, ct: flip(env.ct, -1) }),
    kc: (env) => ({ ...env, kc: flip(env.kc) }),
    sig: (env) => ({ ...env, sig: flip(env.sig, 3) }),
    sig_kid: (env) => ({ ...env, sig_kid: keys.bob.sigKid }),
    wrapped_key: (env) => ({ ...env, keys: Object.fromEntries(Object.entries(env.keys).map(([k, v]) => [k, flip(v, 7)])) }),
    missing_own_key: (env) => ({ ...env, keys: { [keys.alice.encKid]: env.keys[keys.alice.encKid] } }),
    extra_field: (env) => ({ ...env, x: 1 }),
    missing_field: ({ kc, ...rest }) => rest,
    missing_n: ({ n, ...rest }) => rest,
    version: (env) => ({ ...env, v: 1 }),
    n: (env) => ({ ...env, n: env.n + 1 }),
    n_fraction: (env) => ({ ...env, n: env.n + 0.5 }),
    head: (env) => ({ ...env, head: '' }),
    non_canonical_b64: (env) => ({ ...env, ct: env.ct.replace(/=+$/, '') }),
  };

  for (const [name, tamper] of Object.entries(tampers)) {
    test(`tampered ${name} is rejected`, async () => {
      await assert.rejects(openAs('bob', tamper(await seal())), P.OpenError);
    });
  }

  for (const overrides of [{ conversationId: 8 }, { senderId: 2 }, { clientMsgId: `${CMID.slice(0, -1)}f` }]) {
    test(`aad field ${Object.keys(overrides)[0]} is bound`, async () => {
      await assert.rejects(openAs('bob', await seal(), overrides), P.OpenError);
    });
  }

  test('the key commitment catches a consistent key swap', async () => {
    const envelope = await seal();
    const other = await subtle.encrypt(P.OAEP, keys.bob.encPublic, new Uint8Array(32).fill(1));
    const swapped = { ...envelope, keys: { ...envelope.keys, [keys.bob.encKid]: P.b64encode(other) } };
    await assert.rejects(openAs('bob', swapped), /commitment/);
    assert.equal((await openAs('alice', swapped)).type, 'text');
  });

  test('a plaintext that is not a JSON object is refused', async () => {
    const contentKey = new Uint8Array(32);
    const iv = new Uint8Array(12);
    const aadText = P.messageAad(7, 1, CMID, keys.alice.sigKid, 1, '');
    const aad = new TextEncoder().encode(aadText);
    const aesKey = await subtle.importKey('raw', contentKey, 'AES-GCM', false, ['encrypt']);
    for (const raw of ['[1]', '"s"', '{bad', '{"a":NaN}', new Uint8Array([0xff, 0xfe])]) {
      const bytes = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw;
      const forged = await P.sealEnvelope({
        plaintext: {}, ...CONTEXT, n: 1, head: '', senderKeys: keys.alice, recipientKeys: recipients('bob'), contentKey, iv,
      });
      forged.ct = P.b64encode(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad }, aesKey, bytes));
      const message = P.signedString(aadText, forged.iv, forged.ct, forged.kc);
      forged.sig = P.b64encode(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, keys.alice.sigPrivate, message));
      await assert.rejects(openAs('bob', forged), /plaintext/);
    }
  });
});


describe('history rewrap', () => {
  const seal = () => P.sealEnvelope({
    plaintext: P.textMessage('old'), ...CONTEXT, n: 2, head: '', senderKeys: keys.alice,
    recipientKeys: { [keys.alice.encKid]: keys.alice.encPublic, [keys.bob.encKid]: keys.bob.encPublic },
  });

  test('the new device opens what the old one rewrapped', async () => {
    const envelope = await seal();
    const ek = await P.rewrapContentKey(envelope, keys.bob, keys.alice2.encPublic);
    const served = { ...envelope, keys: { [keys.alice2.encKid]: ek } };
    const opened = await P.openEnvelope(served, { ...CONTEXT, deviceKeys: keys.alice2, sigPublic: keys.alice.sigPublic });
    assert.equal(opened.text, 'old');
  });

  test('refuses what this device cannot open', async () => {
    const envelope = await seal();
    const target = keys.alice2.encPublic;
    await assert.rejects(P.rewrapContentKey(envelope, keys.alice2, target), /no wrapped key/);
    const broken = { ...envelope, keys: { ...envelope.keys, [keys.bob.encKid]: flip(envelope.keys[keys.bob.encKid], 9) } };
    await assert.rejects(P.rewrapContentKey(broken, keys.bob, target), P.OpenError);
    await assert.rejects(P.rewrapContentKey({ ...envelope, kc: flip(envelope.kc) }, keys.bob, target), P.OpenError);
    await assert.rejects(P.rewrapContentKey({ ...envelope, x: 1 }, keys.bob, target), P.OpenError);
  });
});

describe('identity proof, certificates, upgrade signatures', () => {
  test('identity proof round trip and binding', async () => {
    const { alice, bob } = keys;
    const proof = await P.signIdentityProof(alice.identity, 1);
    assert.equal(await P.verifyIdentityProof(alice.idPublic, 1, proof), true);
    assert.equal(await P.verifyIdentityProof(alice.idPublic, 2, proof), false);
    assert.equal(await P.verifyIdentityProof(bob.idPublic, 1, proof), false);
    assert.equal(await P.verifyIdentityProof(alice.idPublic, 1, flip(proof)), false);
    await assert.rejects(P.verifyIdentityProof(alice.idPublic, 1, `${proof} `), rejectsWith('bad_request'));
    // A bare {privateKey, publicKey} pair signs the same way.
    const bare = { privateKey: alice.idPrivate, publicKey: alice.idPublic };
    assert.equal(await P.verifyIdentityProof(alice.idPublic, 1, await P.signIdentityProof(bare, 1)), true);
  });

  test('device cert round trip and binding', async () => {
    const { alice, bob } = keys;
    const cert = await P.signDeviceCert(alice.identity, 1, bob.encKid, bob.sigKid);
    assert.equal(await P.verifyDeviceCert(alice.idPublic, 1, bob.encKid, bob.sigKid, cert), true);
    assert.equal(await P.verifyDeviceCert(alice.idPublic, 2, bob.encKid, bob.sigKid, cert), false);
    assert.equal(await P.verifyDeviceCert(bob.idPublic, 1, bob.encKid, bob.sigKid, cert), false);
    assert.equal(await P.verifyDeviceCert(alice.idPublic, 1, bob.sigKid, bob.encKid, cert), false);
    await assert.rejects(P.verifyDeviceCert(alice.idPublic, 1, 'x', bob.sigKid, cert), rejectsWith('bad_request'));
  });

  test('identity upgrade round trip and binding', async () => {
    const { alice, bob } = keys;
    const upgrade = await P.signIdentityUpgrade(alice, 1, bob.idKid);
    assert.deepEqual(Object.keys(upgrade), ['sig_kid', 'sig']);
    assert.equal(upgrade.sig_kid, alice.sigKid);
    assert.equal(await P.verifyIdentityUpgrade(alice.sigPublic, 1, bob.idKid, upgrade), true);
    assert.equal(await P.verifyIdentityUpgrade(alice.sigPublic, 1, alice.idKid, upgrade), false);
    assert.equal(await P.verifyIdentityUpgrade(bob.sigPublic, 1, bob.idKid, upgrade), false);
    await assert.rejects(P.verifyIdentityUpgrade(alice.sigPublic, 1, bob.idKid, { ...upgrade, x: 1 }), rejectsWith('bad_request'));
  });
});

describe('link codes and id_wrap', () => {
  const trust = () => ({ identities: { 2: { id_kid: keys.bob.idKid, verified: true } } });
  const wrap = (overrides = {}) => P.makeIdWrap(keys.alice.identity, trust(), {
    userId: 1, encPublic: keys.alice2.encPublic, sigKid: keys.alice2.sigKid, ...overrides,
  });

  test('link code format and comparison', async () => {
    const code = await P.linkCode(1, keys.alice.idKid, keys.alice2.encKid, keys.alice2.sigKid);
    const message = `e2ee-chat/v2/link-code|1|${keys.alice.idKid}|${keys.alice2.encKid}|${keys.alice2.sigKid}`;
    assert.equal(code, (await P.sha256Hex(message)).slice(0, 20));
    assert.equal(P.formatLinkCode(code), code.match(/.{4}/g).join(' '));
    assert.ok(P.sameLinkCode(P.formatLinkCode(code).toUpperCase(), code));
    assert.equal(P.sameLinkCode(code.slice(1), code), false);
    assert.equal(P.sameLinkCode(null, code), false);
  });

  test('id_wrap round trip', async () => {
    const made = await wrap();
    assert.deepEqual(Object.keys(made), ['ek', 'iv', 'ct']);
    const { identity, trust: opened } = await P.openIdWrap(made, { userId: 1, deviceKeys: keys.alice2 });
    assert.equal(identity.kid, keys.alice.idKid);
    assert.equal(identity.privateKey.extractable, false);
    assert.deepEqual(opened, trust());
    const extractable = await P.openIdWrap(made, { userId: 1, deviceKeys: keys.alice2, extractable: true });
    assert.equal(extractable.identity.privateKey.extractable, true);
    assert.notEqual((await wrap()).ct, made.ct);
  });

  test('id_wrap binds the user and the new device\'s kids', async () => {
    const made = await wrap();
    await assert.rejects(P.openIdWrap(made, { userId: 2, deviceKeys: keys.alice2 }), P.OpenError);
    await assert.rejects(P.openIdWrap(made, { userId: 1, deviceKeys: await mixedDevice('alice2', 'bob') }), P.OpenError);
    await assert.rejects(P.openIdWrap(made, { userId: 1, deviceKeys: keys.bob }), P.OpenError);
  });

  test('makeIdWrap checks its inputs', async () => {
    await assert.rejects(P.makeIdWrap(keys.alice.identity, { identities: { x: {} } }, {
      userId: 1, encPublic: keys.alice2.encPublic, sigKid: keys.alice2.sigKid,
    }), rejectsWith('bad_request'));
    await assert.rejects(wrap({ wrapKey: new Uint8Array(16) }), RangeError);
    const locked = await P.identityKeyFromPkcs8(P.b64decode(vector('keys.json').alice.id_pkcs8));
    await assert.rejects(P.makeIdWrap(locked, trust(), {
      userId: 1, encPublic: keys.alice2.encPublic, sigKid: keys.alice2.sigKid,
    }), rejectsWith('invalid_key'));
  });

  test('trust state keys are ASCII user ids', () => {
    const entry = { id_kid: 'a'.repeat(64), verified: false };
    assert.ok(P.checkTrustState({ identities: { 12: entry }, other: 1 }));
    for (const key of ['\u0661', '\u00b2', '012', '0', '-1', ' 1']) {
      assert.throws(() => P.checkTrustState({ identities: { [key]: entry } }), rejectsWith('bad_request'), key);
    }
  });
});

describe('safety numbers', () => {
  test('digits and order', async () => {
    const kidA = keys.alice.idKid;
    const kidB = keys.bob.idKid;
    const digest = new Uint8Array(await subtle.digest('SHA-256', new TextEncoder().encode(`e2ee-chat/v2/safety|1|${kidA}`)));
    let expected = '';
    for (let i = 0; i < 30; i += 5) {
      expected += String(Number(BigInt(`0x${P.hex(digest.subarray(i, i + 5))}`) % 100000n)).padStart(5, '0');
    }
    assert.equal(await P.safetyDigits(1, kidA), expected);
    const number = await P.safetyNumber(2, kidB, 1, kidA);
    assert.equal(number, expected + (await P.safetyDigits(2, kidB)));
    assert.equal(number, await P.safetyNumber(1, kidA, 2, kidB));
    assert.ok((await P.safetyNumber(10, kidA, 9, kidB)).startsWith(await P.safetyDigits(9, kidB)));
    assert.equal(P.formatSafetyNumber(number).split(' ').length, 12);
  });
});

// --- the Python-made vectors ------------------------------------------------------------

const recipientsOf = (v) => Object.fromEntries(v.recipients.map((n) => [keys[n].encKid, keys[n].encPublic]));

/** What a verify function gives: true, false or the ProtocolError code it rejects with. */
async function verdict(promiseFn) {
  try {
    return await promiseFn();
  } catch (error) {
    if (error instanceof P.ProtocolError) return error.code;
    throw error;
  }
}

describe('Python-made envelope vectors', () => {
  test('v1: iv, ct and kc are reproduced byte for byte', async () => {
    const v = vector('envelope_v1.json');
    const envelope = await P.sealEnvelopeV1({
      plaintext: v.plaintext, ...jsContext(v.context), senderKeys: keys[v.sender], recipientKeys: recipientsOf(v),
      contentKey: P.b64decode(v.content_key), iv: P.b64decode(v.iv),
    });
    assert.deepEqual({ iv: envelope.iv, ct: envelope.ct, kc: envelope.kc }, v.deterministic);
  });

  test('v2: aad, iv, ct and kc are reproduced byte for byte', async () => {
    const v = vector('envelope_v2.json');
    const { conversationId, senderId, clientMsgId } = jsContext(v.context);
    assert.equal(P.messageAad(conversationId, senderId, clientMsgId, keys[v.sender].sigKid, v.n, v.head), v.aad);
    const envelope = await P.sealEnvelope({
      plaintext: v.plaintext, ...jsContext(v.context), n: v.n, head: v.head, senderKeys: keys[v.sender],
      recipientKeys: recipientsOf(v), contentKey: P.b64decode(v.content_key), iv: P.b64decode(v.iv),
    });
    assert.deepEqual({ iv: envelope.iv, ct: envelope.ct, kc: envelope.kc }, v.deterministic);
    assert.deepEqual([envelope.n, envelope.head], [v.envelope.n, v.head]);
  });

  for (const file of ['envelope_v1.json', 'envelope_v2.json']) {
    test(`${file} opens for every recipient and its signature verifies`, async () => {
      const v = vector(file);
      const sigPublic = keys[v.sender].sigPublic;
      for (const name of v.recipients) {
        const plaintext = await P.openEnvelope(v.envelope, { ...jsContext(v.context), deviceKeys: keys[name], sigPublic });
        assert.deepEqual(plaintext, v.plaintext);
      }
      assert.equal(await P.verifyEnvelopeSignature(v.envelope, { ...jsContext(v.context), sigPublic }), true);
    });

    test(`${file}: every tamper case is rejected`, async () => {
      const v = vector(file);
      const names = v.tampered.map((t) => t.name);
      for (const field of ['iv', 'ct', 'kc', 'sig', 'wrapped_key', 'conversation_id', 'sender_id', 'client_msg_id']) {
        assert.ok(names.includes(field), field);
      }
      if (file === 'envelope_v2.json') {
        for (const field of ['n', 'head', 'missing_n', 'missing_head', 'version_1', 'n_string', 'n_too_big']) assert.ok(names.includes(field), field);
      }
      for (const tamper of v.tampered) {
        await assert.rejects(
          P.openEnvelope(tamper.envelope, { ...jsContext(tamper.context), deviceKeys: keys.bob, sigPublic: keys[v.sender].sigPublic }),
          P.OpenError,
          tamper.name,
        );
      }
    });
  }

  test('v2: the direct envelope (empty head) opens', async () => {
    const { direct } = vector('envelope_v2.json');
    assert.equal(direct.envelope.head, '');
    const plaintext = await P.openEnvelope(direct.envelope, { ...jsContext(direct.context), deviceKeys: keys.bob, sigPublic: keys.alice.sigPublic });
    assert.deepEqual(plaintext, direct.plaintext);
  });

  test('history rewrap: the served envelope opens for the new device; tampered keys do not', async () => {
    const v = vector('history_rewrap.json');
    const recipient = keys[v.recipient];
    const options = { ...jsContext(v.context), deviceKeys: recipient, sigPublic: keys[v.sender].sigPublic };
    assert.deepEqual(await P.openEnvelope(v.served, options), v.plaintext);
    for (const tamper of v.tampered) {
      await assert.rejects(P.openEnvelope({ ...v.envelope, keys: { [recipient.encKid]: tamper.ek } }, options), P.OpenError, tamper.name);
    }
    const again = await P.rewrapContentKey(v.envelope, keys[v.rewrapped_by], recipient.encPublic);
    assert.deepEqual(await P.openEnvelope({ ...v.envelope, keys: { [recipient.encKid]: again } }, options), v.plaintext);
  });
});

describe('Python-made identity vectors', () => {
  test('device proof verifies', async () => {
    const v = vector('device_proof.json');
    const sigPublic = await P.importSigningKey(keys[v.device].sigSpki);
    assert.equal(await P.verifyDeviceProof(sigPublic, v.user_id, v.enc_kid, v.sig_kid, v.proof), true);
    assert.equal(await P.verifyDeviceProof(keys.bob.sigPublic, v.user_id, v.enc_kid, v.sig_kid, v.proof), false);
  });

  test('identity proof: every case gets its verdict', async () => {
    const v = vector('identity_proof.json');
    assert.equal(new TextDecoder().decode(P.identityProofMessage(1, v.id_kid)), v.message);
    for (const c of v.cases) {
      assert.equal(await verdict(() => P.verifyIdentityProof(keys[c.identity].idPublic, c.user_id, c.proof)), c.expect, c.name);
    }
  });

  test('device cert: every cert verifies, every case gets its verdict', async () => {
    const v = vector('device_cert.json');
    const stored = vector('keys.json');
    const owners = { alice: 'alice', alice2: 'alice', bob: 'bob' };
    for (const [device, cert] of Object.entries(v.certs)) {
      const ok = await P.verifyDeviceCert(keys[owners[device]].idPublic, stored[device].user_id, keys[device].encKid, keys[device].sigKid, cert);
      assert.equal(ok, true, device);
    }
    for (const c of v.cases) {
      const got = await verdict(() => P.verifyDeviceCert(keys[c.identity].idPublic, c.user_id, c.enc_kid, c.sig_kid, c.cert));
      assert.equal(got, c.expect, c.name);
    }
  });

  test('identity upgrade: every case gets its verdict', async () => {
    const v = vector('identity_upgrade.json');
    for (const c of v.cases) {
      const got = await verdict(() => P.verifyIdentityUpgrade(keys[c.device].sigPublic, c.user_id, c.id_kid, c.upgrade));
      assert.equal(got, c.expect, c.name);
    }
  });

  test('link codes', async () => {
    const v = vector('link_code.json');
    for (const c of v.cases) {
      const code = await P.linkCode(c.user_id, c.id_kid, c.enc_kid, c.sig_kid);
      assert.deepEqual([code, P.formatLinkCode(code)], [c.code, c.formatted], c.name);
    }
    for (const c of v.same) assert.equal(P.sameLinkCode(c.typed, c.code), c.expect, JSON.stringify(c.typed));
  });

  test('id_wrap opens to the identity and trust, and its ct is reproduced', async () => {
    const v = vector('id_wrap.json');
    const { identity, trust } = await P.openIdWrap(v.id_wrap, { userId: v.user_id, deviceKeys: keys[v.recipient] });
    assert.equal(identity.kid, v.id_kid);
    assert.deepEqual(trust, v.trust);
    const again = await P.makeIdWrap(keys[v.approver].identity, v.trust, {
      userId: v.user_id, encPublic: keys[v.recipient].encPublic, sigKid: keys[v.recipient].sigKid,
      wrapKey: P.b64decode(v.wrap_key), iv: P.b64decode(v.iv),
    });
    assert.equal(again.ct, v.deterministic_ct);
    assert.equal(again.ct, v.id_wrap.ct);
  });

  test('id_wrap: every tamper case is refused', async () => {
    const v = vector('id_wrap.json');
    assert.ok(v.tampered.length >= 15);
    for (const c of v.tampered) {
      const names = c.open_as ?? { enc: v.recipient, sig: v.recipient };
      const device = await mixedDevice(names.enc, names.sig);
      await assert.rejects(P.openIdWrap(c.id_wrap, { userId: c.user_id ?? v.user_id, deviceKeys: device }), P.OpenError, c.name);
    }
  });

  test('trust states', () => {
    for (const c of vector('id_wrap.json').trust_cases) {
      let valid;
      try {
        valid = P.checkTrustState(c.trust) === c.trust;
      } catch (error) {
        assert.equal(error.code, 'bad_request');
        valid = false;
      }
      assert.equal(valid, c.valid, JSON.stringify(c.trust));
    }
  });

  test('safety numbers', async () => {
    for (const c of vector('safety_number.json').cases) {
      assert.equal(await P.safetyDigits(c.user_a, c.id_kid_a), c.digits_a);
      assert.equal(await P.safetyDigits(c.user_b, c.id_kid_b), c.digits_b);
      const number = await P.safetyNumber(c.user_a, c.id_kid_a, c.user_b, c.id_kid_b);
      assert.deepEqual([number, P.formatSafetyNumber(number)], [c.number, c.formatted]);
    }
  });
});
