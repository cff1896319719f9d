// static/chat/keystore.js: lock/unlock of v1 and v2 records, NFC passphrases, bounds, kid
// checks and the Python-made vectors.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { b64decode, b64encode, deviceKeysFromPkcs8 } from '../../static/chat/protocol.js';
import * as K from '../../static/chat/keystore.js';
import { fixedKeys, flip, vector } from './helpers.mjs';

const FAST = 100000; // the lowest count readers accept; keeps the tests quick
let keys;
let v1Alice; // alice's device keys without the identity
let record;

const lock = (passphrase = 'pass phrase', extra = {}, device = v1Alice) =>
  K.lockKeystore(device, { userId: 1, username: 'alice', deviceId: 3, passphrase, iterations: FAST, ...extra });

before(async () => {
  keys = await fixedKeys();
  const stored = vector('keys.json').alice;
  v1Alice = await deviceKeysFromPkcs8(b64decode(stored.enc_pkcs8), b64decode(stored.sig_pkcs8), { extractable: true });
  record = await lock();
});

describe('keystore', () => {
  test('record shape', () => {
    assert.equal(record.v, 1);
    assert.equal(record.kind, 'e2ee-chat-keystore');
    assert.deepEqual([record.user_id, record.username, record.device_id], [1, 'alice', 3]);
    assert.deepEqual([record.enc_kid, record.sig_kid], [keys.alice.encKid, keys.alice.sigKid]);
    assert.deepEqual([record.kdf.name, record.kdf.iterations], ['PBKDF2-SHA256', FAST]);
    assert.equal(b64decode(record.kdf.salt).length, 16);
    assert.equal(b64decode(record.iv).length, 12);
    assert.equal(K.DEFAULT_ITERATIONS, 600000);
  });

  test('round trip gives non-extractable keys', async () => {
    const unlocked = await K.unlockKeystore(record, 'pass phrase');
    assert.equal(unlocked.encKid, keys.alice.encKid);
    assert.equal(unlocked.sigKid, keys.alice.sigKid);
    assert.equal(unlocked.idKid, null);
    assert.equal(unlocked.encPrivate.extractable, false);
    assert.equal(unlocked.sigPrivate.extractable, false);
    await assert.rejects(K.lockKeystore(unlocked, { userId: 1, username: 'a', deviceId: 3, passphrase: 'x', iterations: FAST }));
  });

  test('v2 record shape and round trip with the identity', async () => {
    const v2 = await lock('pass phrase', {}, keys.alice);
    assert.equal(v2.v, 2);
    assert.equal(v2.id_kid, keys.alice.idKid);
    assert.deepEqual(Object.keys(v2), ['v', 'kind', 'user_id', 'username', 'device_id', 'enc_kid', 'sig_kid', 'id_kid', 'kdf', 'iv', 'ct']);
    const unlocked = await K.unlockKeystore(v2, 'pass phrase');
    assert.deepEqual([unlocked.encKid, unlocked.sigKid, unlocked.idKid], [keys.alice.encKid, keys.alice.sigKid, keys.alice.idKid]);
    assert.equal(unlocked.idPrivate.extractable, false);
    assert.equal((await K.unlockKeystore(v2, 'pass phrase', { extractable: true })).idPrivate.extractable, true);
    for (const [field, value] of [['id_kid', keys.bob.idKid], ['v', 1]]) {
      await assert.rejects(K.unlockKeystore({ ...v2, [field]: value }, 'pass phrase'), K.WrongPassphrase, field);
    }
    const relocked = await K.changePassphrase(v2, 'pass phrase', 'new one');
    assert.equal(relocked.v, 2);
    assert.equal((await K.unlockKeystore(relocked, 'new one')).idKid, keys.alice.idKid);
  });

  test('keystore aad', () => {
    const text = (bytes) => new TextDecoder().decode(bytes);
    assert.equal(text(K.keystoreAad(1, 3)), 'e2ee-chat/v1/keystore|1|3');
    assert.equal(text(K.keystoreAad(1, 3, 'ab'.repeat(32))), `e2ee-chat/v2/keystore|1|3|${'ab'.repeat(32)}`);
  });

  test('fresh salt and iv', async () => {
    const again = await lock();
    assert.notEqual(again.kdf.salt, record.kdf.salt);
    assert.notEqual(again.iv, record.iv);
  });

  test('wrong passphrase', async () => {
    for (const passphrase of ['pass phrase ', 'Pass phrase', '']) {
      await assert.rejects(K.unlockKeystore(record, passphrase), K.WrongPassphrase);
    }
  });

  test('passphrase is NFC-normalized', async () => {
    const nfd = await lock('Cafe\u0301');
    assert.equal((await K.unlockKeystore(nfd, 'Caf\u00e9')).encKid, keys.alice.encKid);
  });

  test('aad binds user and device', async () => {
    for (const field of ['user_id', 'device_id']) {
      await assert.rejects(K.unlockKeystore({ ...record, [field]: record[field] + 1 }, 'pass phrase'), K.WrongPassphrase);
    }
  });

  test('tampered ct is refused', async () => {
    await assert.rejects(K.unlockKeystore({ ...record, ct: flip(record.ct) }, 'pass phrase'), K.WrongPassphrase);
  });

  test('iteration bounds on lock and unlock', async () => {
    for (const iterations of [99999, 10000001, 0, '600000', 1.5, true]) {
      await assert.rejects(K.unlockKeystore({ ...record, kdf: { ...record.kdf, iterations } }, 'x'), K.KeystoreError);
      await assert.rejects(lock('x', { iterations }), K.KeystoreError);
    }
  });

  test('keys that do not match the kids are refused', async () => {
    for (const field of ['enc_kid', 'sig_kid']) {
      await assert.rejects(K.unlockKeystore({ ...record, [field]: keys.bob.encKid }, 'pass phrase'), /match/);
    }
  });

  test('malformed records are refused', async () => {
    const salt16 = b64encode(new Uint8Array(16));
    const changes = [
      { v: 2 },
      { v: 3 },
      { user_id: 0 },
      { kind: 'other' },
      { iv: 'AAAA' },
      { ct: 'not base64' },
      { user_id: '1' },
      { kdf: { name: 'scrypt', iterations: FAST, salt: salt16 } },
      { kdf: { name: 'PBKDF2-SHA256', iterations: FAST, salt: 'AAAA' } },
      { kdf: undefined },
    ];
    for (const change of changes) {
      await assert.rejects(K.unlockKeystore({ ...record, ...change }, 'pass phrase'), K.KeystoreError, JSON.stringify(change));
    }
    await assert.rejects(K.unlockKeystore(null, 'pass phrase'), K.KeystoreError);
  });
});

describe('Python-made keystore vector (v1)', () => {
  test('unlocks with the NFD and the NFC passphrase', async () => {
    const v = vector('keystore_v1.json');
    for (const passphrase of [v.passphrase_nfd, v.passphrase_nfc]) {
      const unlocked = await K.unlockKeystore(v.record, passphrase);
      assert.equal(unlocked.encKid, keys[v.device].encKid);
      assert.equal(unlocked.sigKid, keys[v.device].sigKid);
    }
  });

  test('refuses the wrong passphrase', async () => {
    const v = vector('keystore_v1.json');
    await assert.rejects(K.unlockKeystore(v.record, v.wrong_passphrase), K.WrongPassphrase);
  });

  test('locks byte-identically with the same salt and iv', async () => {
    const v = vector('keystore_v1.json');
    const relocked = await K.lockKeystore(v1Alice, {
      userId: v.record.user_id,
      username: v.record.username,
      deviceId: v.record.device_id,
      passphrase: v.passphrase_nfd,
      iterations: v.record.kdf.iterations,
      salt: b64decode(v.salt),
      iv: b64decode(v.iv),
    });
    assert.equal(JSON.stringify(relocked), JSON.stringify(v.record));
  });
});

describe('Python-made keystore vector (v2)', () => {
  test('unlocks with the NFD and the NFC passphrase to the three keys', async () => {
    const v = vector('keystore_v2.json');
    assert.equal(new TextDecoder().decode(K.keystoreAad(1, 11, v.record.id_kid)), v.aad);
    for (const passphrase of [v.passphrase_nfd, v.passphrase_nfc]) {
      const unlocked = await K.unlockKeystore(v.record, passphrase);
      const device = keys[v.device];
      assert.deepEqual([unlocked.encKid, unlocked.sigKid, unlocked.idKid], [device.encKid, device.sigKid, device.idKid]);
    }
    await assert.rejects(K.unlockKeystore(v.record, v.wrong_passphrase), K.WrongPassphrase);
  });

  test('locks byte-identically with the same salt and iv', async () => {
    const v = vector('keystore_v2.json');
    const relocked = await K.lockKeystore(keys[v.device], {
      userId: v.record.user_id,
      username: v.record.username,
      deviceId: v.record.device_id,
      passphrase: v.passphrase_nfd,
      iterations: v.record.kdf.iterations,
      salt: b64decode(v.salt),
      iv: b64decode(v.iv),
    });
    assert.equal(JSON.stringify(relocked), JSON.stringify(v.record));
  });

  test('every tampered record is refused with its error class', async () => {
    const v = vector('keystore_v2.json');
    const names = v.tampered.map((c) => c.name);
    for (const name of ['id_kid', 'missing_id_kid', 'v2_without_id_key', 'v1_with_id_key']) assert.ok(names.includes(name), name);
    for (const c of v.tampered) {
      await assert.rejects(K.unlockKeystore(c.record, v.passphrase_nfc), (error) => error.name === c.error, c.name);
    }
  });
});
