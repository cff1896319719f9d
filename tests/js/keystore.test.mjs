// static/chat/keystore.js: lock/unlock, NFC passphrases, bounds, kid checks and the vector.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { b64decode, b64encode } from '../../static/chat/protocol.js';
import * as K from '../../static/chat/keystore.js';
import { fixedKeys, flip, vector } from './helpers.mjs';

const FAST = 100000; // the lowest count readers accept; keeps the tests quick
let keys;
let record;

const lock = (passphrase = 'pass phrase', extra = {}) =>
  K.lockKeystore(keys.alice, { userId: 1, username: 'alice', deviceId: 3, passphrase, iterations: FAST, ...extra });

before(async () => {
  keys = await fixedKeys();
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
    assert.equal(unlocked.encPrivate.extractable, false);
    assert.equal(unlocked.sigPrivate.extractable, false);
    await assert.rejects(K.lockKeystore(unlocked, { userId: 1, username: 'a', deviceId: 3, passphrase: 'x', iterations: FAST }));
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

describe('Python-made keystore vector', () => {
  test('unlocks with the NFD and the NFC passphrase', async () => {
    const v = vector('keystore.json');
    for (const passphrase of [v.passphrase_nfd, v.passphrase_nfc]) {
      const unlocked = await K.unlockKeystore(v.record, passphrase);
      assert.equal(unlocked.encKid, keys[v.device].encKid);
      assert.equal(unlocked.sigKid, keys[v.device].sigKid);
    }
  });

  test('refuses the wrong passphrase', async () => {
    const v = vector('keystore.json');
    await assert.rejects(K.unlockKeystore(v.record, v.wrong_passphrase), K.WrongPassphrase);
  });

  test('locks byte-identically with the same salt and iv', async () => {
    const v = vector('keystore.json');
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
});
