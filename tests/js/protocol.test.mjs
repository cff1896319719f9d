// static/chat/protocol.js: encodings, keys, proofs, envelopes and the Python-made vectors.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../static/chat/protocol.js';
import { fixedKeys, flip, jsContext, vector } from './helpers.mjs';

const subtle = globalThis.crypto.subtle;
const CMID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const CONTEXT = { conversationId: 7, senderId: 1, clientMsgId: CMID };
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

  test('message aad and signed string', () => {
    const aad = P.messageAad(7, 1, CMID);
    assert.equal(aad, `e2ee-chat/v1/msg|7|1|${CMID}`);
    assert.equal(new TextDecoder().decode(P.signedString(aad, 'aXY=', 'Y3Q=', 'a2M=')), `${aad}|aXY=|Y3Q=|a2M=`);
    for (const args of [['7', 1, CMID], [7, 1.5, CMID], [7, 1, CMID.toUpperCase()]]) {
      assert.throws(() => P.messageAad(...args), rejectsWith('bad_request'));
    }
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
    const device = await P.deviceKeysFromPkcs8(enc, P.b64decode(stored.sig_pkcs8));
    assert.equal(device.encPrivate.extractable, false);
    assert.equal(device.sigPrivate.extractable, false);
    assert.equal(device.encKid, stored.enc_kid);
    await assert.rejects(P.deviceKeysFromPkcs8(enc, enc), rejectsWith('invalid_key'));
    await assert.rejects(P.deviceKeysFromPkcs8(new Uint8Array([1, 2]), enc), rejectsWith('invalid_key'));
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
  const seal = (plaintext = P.textMessage('hello ✓')) =>
    P.sealEnvelope({
      plaintext,
      ...CONTEXT,
      senderKeys: keys.alice,
      recipientKeys: { [keys.alice.encKid]: keys.alice.encPublic, [keys.bob.encKid]: keys.bob.encPublic },
    });
  const openAs = (name, envelope, overrides = {}) =>
    P.openEnvelope(envelope, { ...CONTEXT, ...overrides, deviceKeys: keys[name], sigPublic: keys.alice.sigPublic });

  test('round trip for every recipient', async () => {
    const envelope = await seal();
    assert.deepEqual(Object.keys(envelope), P.ENVELOPE_FIELDS);
    assert.equal(envelope.sig_kid, keys.alice.sigKid);
    P.validateEnvelope(envelope);
    for (const name of ['alice', 'bob']) {
      assert.deepEqual(await openAs(name, envelope), { type: 'text', text: 'hello ✓' });
    }
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
      P.sealEnvelope({ plaintext: {}, ...CONTEXT, senderKeys: keys.alice, recipientKeys: { [keys.alice.encKid]: keys.bob.encPublic } }),
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
    version: (env) => ({ ...env, v: 2 }),
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
    const aad = new TextEncoder().encode(P.messageAad(7, 1, CMID));
    const aesKey = await subtle.importKey('raw', contentKey, 'AES-GCM', false, ['encrypt']);
    for (const raw of ['[1]', '"s"', '{bad', '{"a":NaN}', new Uint8Array([0xff, 0xfe])]) {
      const bytes = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw;
      const forged = await P.sealEnvelope({
        plaintext: {}, ...CONTEXT, senderKeys: keys.alice, recipientKeys: { [keys.bob.encKid]: keys.bob.encPublic }, contentKey, iv,
      });
      forged.ct = P.b64encode(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad }, aesKey, bytes));
      const message = P.signedString(P.messageAad(7, 1, CMID), forged.iv, forged.ct, forged.kc);
      forged.sig = P.b64encode(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, keys.alice.sigPrivate, message));
      await assert.rejects(openAs('bob', forged), /plaintext/);
    }
  });
});

describe('Python-made envelope vector', () => {
  test('iv, ct and kc are reproduced byte for byte', async () => {
    const v = vector('envelope.json');
    const envelope = await P.sealEnvelope({
      plaintext: v.plaintext,
      ...jsContext(v.context),
      senderKeys: keys[v.sender],
      recipientKeys: Object.fromEntries(v.recipients.map((n) => [keys[n].encKid, keys[n].encPublic])),
      contentKey: P.b64decode(v.content_key),
      iv: P.b64decode(v.iv),
    });
    assert.deepEqual({ iv: envelope.iv, ct: envelope.ct, kc: envelope.kc }, v.deterministic);
  });

  test('opens for every recipient', async () => {
    const v = vector('envelope.json');
    for (const name of v.recipients) {
      const plaintext = await P.openEnvelope(v.envelope, {
        ...jsContext(v.context), deviceKeys: keys[name], sigPublic: keys[v.sender].sigPublic,
      });
      assert.deepEqual(plaintext, v.plaintext);
    }
  });

  test('every tamper case is rejected', async () => {
    const v = vector('envelope.json');
    const names = v.tampered.map((t) => t.name);
    for (const field of ['iv', 'ct', 'kc', 'sig', 'wrapped_key', 'conversation_id', 'sender_id', 'client_msg_id']) {
      assert.ok(names.includes(field), field);
    }
    for (const tamper of v.tampered) {
      await assert.rejects(
        P.openEnvelope(tamper.envelope, { ...jsContext(tamper.context), deviceKeys: keys.bob, sigPublic: keys[v.sender].sigPublic }),
        P.OpenError,
        tamper.name,
      );
    }
  });
});
