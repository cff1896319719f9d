/**
 * Private keys at rest (PROTOCOL.md §3): the passphrase-locked keystore record, v2 with
 * the user's identity key, or v1 (a device not upgraded yet) which still opens.
 *
 * Twin of chatclient/keystore.py. The same JSON is the IndexedDB record and the key
 * file, so a record locked here unlocks in the Python client and back.
 * @module keystore
 */

import { IV_BYTES, TAG_BYTES, b64decode, b64encode, deviceKeysFromPkcs8, isKid } from './protocol.js';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

export const KIND = 'e2ee-chat-keystore';
export const KDF_NAME = 'PBKDF2-SHA256';
export const DEFAULT_ITERATIONS = 600000;
export const MIN_ITERATIONS = 100000;
export const MAX_ITERATIONS = 10000000;
export const SALT_BYTES = 16;
/** The private keys a record of each `v` holds, exactly. */
export const SECRET_FIELDS = { 1: ['enc_pkcs8', 'sig_pkcs8'], 2: ['enc_pkcs8', 'sig_pkcs8', 'id_pkcs8'] };

/** A keystore record that is malformed, out of bounds or holds the wrong keys. */
export class KeystoreError extends Error {
  constructor(message) {
    super(message);
    this.name = 'KeystoreError';
  }
}

/** The passphrase does not open the record (or the record's ciphertext was altered). */
export class WrongPassphrase extends KeystoreError {
  constructor(message = 'wrong passphrase') {
    super(message);
    this.name = 'WrongPassphrase';
  }
}

/**
 * The AES-256-GCM key from PBKDF2-HMAC-SHA256 of the UTF-8 of the passphrase's NFC form.
 * @returns {Promise<CryptoKey>} non-extractable
 */
export async function deriveKek(passphrase, salt, iterations) {
  const secret = await subtle.importKey('raw', encoder.encode(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations },
    secret,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/**
 * `e2ee-chat/v2/keystore|<userId>|<deviceId>|<idKid>` as UTF-8, or v1's
 * `e2ee-chat/v1/keystore|<userId>|<deviceId>` without an identity (`idKid` null).
 * @returns {Uint8Array}
 */
export function keystoreAad(userId, deviceId, idKid = null) {
  if (idKid == null) return encoder.encode(`e2ee-chat/v1/keystore|${userId}|${deviceId}`);
  return encoder.encode(`e2ee-chat/v2/keystore|${userId}|${deviceId}|${idKid}`);
}

function checkKdf(iterations, salt) {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new KeystoreError(`iterations must be ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
  }
  if (salt.length < SALT_BYTES) throw new KeystoreError(`salt must be at least ${SALT_BYTES} bytes`);
  return iterations;
}

function checkId(value, name) {
  if (!Number.isSafeInteger(value)) throw new KeystoreError(`${name} must be an integer`);
  return value;
}

function gcm(iv, userId, deviceId, idKid) {
  return { name: 'AES-GCM', iv, additionalData: keystoreAad(userId, deviceId, idKid), tagLength: TAG_BYTES * 8 };
}

async function pkcs8Of(privateKey) {
  return b64encode(await subtle.exportKey('pkcs8', privateKey));
}

/**
 * Encrypt `deviceKeys` (extractable private keys) under `passphrase` into a §3 record:
 * v2 with the identity key when the keys hold one (`idPrivate`), else v1 (a device not
 * upgraded yet, §7.5). `salt` (16 bytes) and `iv` (12 bytes) are fresh random unless
 * given. Non-extractable keys reject (WebCrypto's error).
 * @returns {Promise<object>}
 */
export async function lockKeystore(
  deviceKeys,
  {
    userId,
    username,
    deviceId,
    passphrase,
    iterations = DEFAULT_ITERATIONS,
    salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES)),
    iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES)),
  },
) {
  checkKdf(iterations, salt);
  checkId(userId, 'user_id');
  checkId(deviceId, 'device_id');
  if (iv.length !== IV_BYTES) throw new KeystoreError('iv must be 12 bytes');
  const idKid = deviceKeys.idKid ?? null;
  const secrets = {
    enc_pkcs8: await pkcs8Of(deviceKeys.encPrivate),
    sig_pkcs8: await pkcs8Of(deviceKeys.sigPrivate),
  };
  if (idKid !== null) secrets.id_pkcs8 = await pkcs8Of(deviceKeys.idPrivate);
  const kek = await deriveKek(passphrase, salt, iterations);
  const ct = await subtle.encrypt(gcm(iv, userId, deviceId, idKid), kek, encoder.encode(JSON.stringify(secrets)));
  const record = {
    v: idKid === null ? 1 : 2,
    kind: KIND,
    user_id: userId,
    username,
    device_id: deviceId,
    enc_kid: deviceKeys.encKid,
    sig_kid: deviceKeys.sigKid,
  };
  if (idKid !== null) record.id_kid = idKid;
  return {
    ...record,
    kdf: { name: KDF_NAME, iterations, salt: b64encode(salt) },
    iv: b64encode(iv),
    ct: b64encode(ct),
  };
}

function parseRecord(record) {
  try {
    if ((record.v !== 1 && record.v !== 2) || record.kind !== KIND || record.kdf.name !== KDF_NAME) {
      throw new KeystoreError('not an e2ee-chat keystore of v1 or v2');
    }
    const userId = checkId(record.user_id, 'user_id');
    const deviceId = checkId(record.device_id, 'device_id');
    if (userId < 1 || deviceId < 1) throw new KeystoreError('user_id and device_id must be at least 1');
    const idKid = record.v === 2 ? record.id_kid : null;
    if (record.v === 2 && !isKid(idKid)) throw new KeystoreError('id_kid must be a kid');
    const salt = b64decode(record.kdf.salt);
    return {
      version: record.v,
      userId,
      deviceId,
      idKid,
      salt,
      iterations: checkKdf(record.kdf.iterations, salt),
      iv: b64decode(record.iv, IV_BYTES),
      sealed: b64decode(record.ct),
    };
  } catch (error) {
    if (error instanceof KeystoreError) throw error;
    throw new KeystoreError('malformed keystore record');
  }
}

/**
 * Decrypt a §3 record (v2, or v1 without an identity key) into DeviceKeys whose private
 * keys are non-extractable. Refuses a malformed record, iterations outside
 * 100,000..10,000,000, a plaintext that does not hold exactly the keys of the record's
 * `v`, and keys that do not match `enc_kid`/`sig_kid`/`id_kid` or are not three
 * different keys (KeystoreError); a failed decryption is WrongPassphrase. Unknown extra
 * fields in the record are ignored. `extractable` (for re-locking, as changePassphrase
 * does, or wrapping the identity for a new device) leaves the private keys extractable.
 * @returns {Promise<import('./protocol.js').DeviceKeys>}
 */
export async function unlockKeystore(record, passphrase, { extractable = false } = {}) {
  const { version, userId, deviceId, idKid, salt, iterations, iv, sealed } = parseRecord(record);
  if (sealed.length < TAG_BYTES) throw new KeystoreError('keystore ct is shorter than the GCM tag');
  const kek = await deriveKek(passphrase, salt, iterations);
  let data;
  try {
    data = await subtle.decrypt(gcm(iv, userId, deviceId, idKid), kek, sealed);
  } catch {
    throw new WrongPassphrase();
  }
  const expected = SECRET_FIELDS[version];
  let secrets;
  try {
    secrets = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw new KeystoreError("keystore plaintext does not hold a device's keys");
  }
  const fields = secrets !== null && typeof secrets === 'object' && !Array.isArray(secrets) ? Object.keys(secrets) : [];
  if (fields.length !== expected.length || !expected.every((f) => fields.includes(f))) {
    throw new KeystoreError(`a v${version} keystore holds exactly ${expected}`);
  }
  let keys;
  try {
    keys = await deviceKeysFromPkcs8(
      b64decode(secrets.enc_pkcs8),
      b64decode(secrets.sig_pkcs8),
      version === 2 ? b64decode(secrets.id_pkcs8) : null,
      { extractable },
    );
  } catch {
    throw new KeystoreError("keystore plaintext does not hold a device's keys");
  }
  if (keys.encKid !== record.enc_kid || keys.sigKid !== record.sig_kid || keys.idKid !== idKid) {
    throw new KeystoreError('keystore keys do not match enc_kid/sig_kid/id_kid');
  }
  return keys;
}

/**
 * The same keys and ids locked under `newPassphrase` with a fresh salt and iv (at least
 * DEFAULT_ITERATIONS). A wrong `oldPassphrase` is WrongPassphrase; nothing is changed.
 * @returns {Promise<object>} the new §3 record
 */
export async function changePassphrase(record, oldPassphrase, newPassphrase) {
  const keys = await unlockKeystore(record, oldPassphrase, { extractable: true });
  return lockKeystore(keys, {
    userId: record.user_id,
    username: record.username,
    deviceId: record.device_id,
    passphrase: newPassphrase,
    iterations: Math.max(DEFAULT_ITERATIONS, record.kdf.iterations),
  });
}
