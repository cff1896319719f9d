/**
 * The wire protocol of PROTOCOL.md §1, §2, §6 and §7: keys, kids, proofs, message
 * envelopes (v2, and v1 as stored before the upgrade), identity keys, device
 * certificates, link codes, identity wraps and safety numbers.
 *
 * Twin of chatclient/protocol.py with the same names in camelCase; keyword arguments
 * become one options object and everything that touches WebCrypto returns a Promise.
 * Where Python passes one RsaKey for an identity, this module takes an *identity pair*
 * `{privateKey, publicKey}` (RSA-PSS CryptoKeys); the pairs it makes also carry `spki`
 * (Uint8Array) and `kid`. WebCrypto only (globalThis.crypto.subtle); runs in browsers
 * and under Node 20. Rosters (§8) are roster.js, order and replay (§9) ordering.js.
 * @module protocol
 */

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

export const ALLOWED_KEY_BITS = [2048, 3072, 4096];
export const DEFAULT_KEY_BITS = 3072;
export const MAX_SPKI_BYTES = 1024;
export const CONTENT_KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const MAX_TEXT_CHARS = 16000;
/** The fields of a v1 envelope (stored before the upgrade), in the order sealed. */
export const ENVELOPE_FIELDS_V1 = ['v', 'iv', 'ct', 'kc', 'keys', 'sig_kid', 'sig'];
/** The fields of a v2 envelope (what new sends carry), in the order sealed. */
export const ENVELOPE_FIELDS = ['v', 'n', 'head', 'iv', 'ct', 'kc', 'keys', 'sig_kid', 'sig'];
/** The largest counter `n` (2^53 - 1). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
export const LINK_CODE_CHARS = 20;
export const ID_WRAP_FIELDS = ['ek', 'iv', 'ct'];

export const OAEP = { name: 'RSA-OAEP', hash: 'SHA-256' };
export const PSS = { name: 'RSA-PSS', hash: 'SHA-256' };
const PSS_PARAMS = { name: 'RSA-PSS', saltLength: 32 };
const PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);
const KEY_COMMITMENT_LABEL = encoder.encode('e2ee-chat/v1/key-commitment');
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KID_RE = /^[0-9a-f]{64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const USER_KEY_RE = /^[1-9][0-9]*$/;

/** A protocol violation; `code` is an error code of PROTOCOL.md §6. */
export class ProtocolError extends Error {
  constructor(code, detail = '') {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'ProtocolError';
    this.code = code;
    this.detail = detail;
  }
}

/** A message (or identity wrap) that cannot be unwrapped, committed, verified or decrypted. */
export class OpenError extends ProtocolError {
  constructor(detail) {
    super('bad_request', detail);
    this.name = 'OpenError';
  }
}

// --- encodings ------------------------------------------------------------------------

/** Standard-alphabet, padded base64 of a Uint8Array or ArrayBuffer. */
export function b64encode(data) {
  const bytes = new Uint8Array(data);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Decode canonical padded standard base64, optionally of exactly `length` bytes.
 * Anything else throws ProtocolError('bad_request').
 * @returns {Uint8Array}
 */
export function b64decode(text, length = undefined) {
  if (typeof text !== 'string' || !B64_RE.test(text)) {
    throw new ProtocolError('bad_request', 'not canonical base64');
  }
  const binary = atob(text);
  // atob also takes non-zero trailing bits; the canonical encoding of what it gave must be the text.
  if (btoa(binary) !== text) throw new ProtocolError('bad_request', 'not canonical base64');
  if (length !== undefined && binary.length !== length) {
    throw new ProtocolError('bad_request', `expected ${length} bytes of base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Lowercase hex of bytes. */
export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a, b) {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((value, i) => value === y[i]);
}

/** Hex SHA-256 of a string's UTF-8 or of bytes. @returns {Promise<string>} */
export async function sha256Hex(data) {
  return hex(await subtle.digest('SHA-256', typeof data === 'string' ? encoder.encode(data) : data));
}

/** Whether `value` looks like a kid: 64 lowercase hex digits. */
export function isKid(value) {
  return typeof value === 'string' && KID_RE.test(value);
}

/** A fresh lowercase UUID4. */
export function newClientMsgId() {
  return globalThis.crypto.randomUUID();
}

/** Whether `value` is a lowercase canonical UUID (the server's rule, §6). */
export function isClientMsgId(value) {
  return typeof value === 'string' && UUID_RE.test(value);
}

/** Whether `value` is a lowercase canonical UUID4 (a group's `gid`, §8). */
export function isUuid4(value) {
  return typeof value === 'string' && UUID4_RE.test(value);
}

/** Whether `value` is a message counter `n` of §2: an integer 1..2^53-1. */
export function isCounter(value) {
  return Number.isSafeInteger(value) && value >= 1;
}

/** Whether `value` is an envelope `head` of §2: `""` or a record hash. */
export function isHead(value) {
  return value === '' || isKid(value);
}

function requireId(value, name) {
  if (!Number.isSafeInteger(value)) throw new ProtocolError('bad_request', `${name} must be an integer`);
  return value;
}

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function hasExactly(object, fields) {
  if (!isPlainObject(object)) return false;
  const keys = Object.keys(object);
  return keys.length === fields.length && fields.every((f) => Object.hasOwn(object, f));
}

// --- keys -----------------------------------------------------------------------------

/** The kid of a public key: hex SHA-256 of its SPKI DER. @returns {Promise<string>} */
export async function computeKid(spki) {
  return sha256Hex(spki);
}

/** The SPKI DER of a public CryptoKey. @returns {Promise<Uint8Array>} */
export async function spkiOf(publicKey) {
  return new Uint8Array(await subtle.exportKey('spki', publicKey));
}

const kids = new WeakMap();

/**
 * The kid of a public CryptoKey (JS only): exported and hashed once per key object,
 * then remembered (CryptoKeys cannot change). @returns {Promise<string>}
 */
export function kidOf(publicKey) {
  let kid = kids.get(publicKey);
  if (kid === undefined) {
    kid = spkiOf(publicKey).then(computeKid);
    kids.set(publicKey, kid);
    kid.catch(() => kids.delete(publicKey));
  }
  return kid;
}

function checkKeyParameters(key) {
  const { modulusLength, publicExponent } = key.algorithm;
  if (!ALLOWED_KEY_BITS.includes(modulusLength)) {
    throw new ProtocolError('invalid_key', 'modulus must be 2048, 3072 or 4096 bits');
  }
  const exponent = publicExponent.subarray(publicExponent.findIndex((b) => b !== 0));
  if (!sameBytes(exponent, PUBLIC_EXPONENT)) {
    throw new ProtocolError('invalid_key', 'public exponent must be 65537');
  }
}

async function importPublicKey(spki, algorithm, usages) {
  if (!(spki instanceof Uint8Array) || spki.length === 0 || spki.length > MAX_SPKI_BYTES) {
    throw new ProtocolError('invalid_key', 'not an SPKI DER public key');
  }
  let key;
  try {
    key = await subtle.importKey('spki', spki, algorithm, true, usages);
  } catch {
    throw new ProtocolError('invalid_key', 'does not parse as an RSA key');
  }
  checkKeyParameters(key);
  if (!sameBytes(await spkiOf(key), spki)) {
    throw new ProtocolError('invalid_key', 'not the canonical SPKI DER');
  }
  kids.set(key, computeKid(spki));
  return key;
}

/**
 * Import a canonical SPKI DER (Uint8Array) RSA key of 2048/3072/4096 bits, e = 65537,
 * as an RSA-OAEP encryption key; anything else throws ProtocolError('invalid_key').
 * @returns {Promise<CryptoKey>}
 */
export function importEncryptionKey(spki) {
  return importPublicKey(spki, OAEP, ['encrypt']);
}

/** As importEncryptionKey, as an RSA-PSS verification key. @returns {Promise<CryptoKey>} */
export function importSigningKey(spki) {
  return importPublicKey(spki, PSS, ['verify']);
}

/** An identity's public key (§7) from its SPKI DER: as importSigningKey. @returns {Promise<CryptoKey>} */
export function importIdentityKey(spki) {
  return importPublicKey(spki, PSS, ['verify']);
}

/**
 * A device's two key pairs: RSA-OAEP (`encPrivate`, `encPublic`) and RSA-PSS
 * (`sigPrivate`, `sigPublic`), with their SPKI DER (`encSpki`, `sigSpki`) and kids; and
 * the user's identity key (`idPrivate`, `idPublic`, `idSpki`, `idKid`, RSA-PSS, §7) once
 * the device holds it, all null on a v1 device. Build one with DeviceKeys.fromKeys.
 */
export class DeviceKeys {
  constructor(fields) {
    const { encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid } = fields;
    const { idPrivate = null, idPublic = null, idSpki = null, idKid = null } = fields;
    Object.assign(this, { encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid });
    Object.assign(this, { idPrivate, idPublic, idSpki, idKid });
    Object.freeze(this);
  }

  /**
   * Wrap four CryptoKeys (six with `idPrivate` and `idPublic`), checking the public keys'
   * size and exponent; keys that are the same key are `invalid_key`.
   * @returns {Promise<DeviceKeys>}
   */
  static async fromKeys({ encPrivate, encPublic, sigPrivate, sigPublic, idPrivate = null, idPublic = null }) {
    checkKeyParameters(encPublic);
    checkKeyParameters(sigPublic);
    const encSpki = await spkiOf(encPublic);
    const sigSpki = await spkiOf(sigPublic);
    const [encKid, sigKid] = await Promise.all([kidOf(encPublic), kidOf(sigPublic)]);
    let idSpki = null;
    let idKid = null;
    if (idPrivate !== null || idPublic !== null) {
      if (idPrivate === null || idPublic === null) throw new ProtocolError('invalid_key', 'an identity needs both halves');
      checkKeyParameters(idPublic);
      idSpki = await spkiOf(idPublic);
      idKid = await kidOf(idPublic);
    }
    const all = [encKid, sigKid, ...(idKid ? [idKid] : [])];
    if (new Set(all).size !== all.length) {
      throw new ProtocolError('invalid_key', 'the encryption, signing and identity keys must differ');
    }
    return new DeviceKeys({ encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid, idPrivate, idPublic, idSpki, idKid });
  }

  /**
   * The same device keys holding the identity `pair` ({privateKey, publicKey}, RSA-PSS);
   * an identity that is one of the device keys is `invalid_key`.
   * @returns {Promise<DeviceKeys>}
   */
  withIdentity(pair) {
    return DeviceKeys.fromKeys({ ...this, idPrivate: pair.privateKey, idPublic: pair.publicKey });
  }

  /** The identity as an identity pair, or null on a v1 device. */
  get identity() {
    return this.idPrivate ? { privateKey: this.idPrivate, publicKey: this.idPublic, spki: this.idSpki, kid: this.idKid } : null;
  }
}

/**
 * Two fresh extractable RSA key pairs (OAEP, PSS) of `bits` bits, e = 65537, without
 * an identity key. @returns {Promise<DeviceKeys>}
 */
export async function generateDeviceKeys(bits = DEFAULT_KEY_BITS) {
  if (!ALLOWED_KEY_BITS.includes(bits)) throw new RangeError(`bits must be one of ${ALLOWED_KEY_BITS}`);
  const params = { modulusLength: bits, publicExponent: PUBLIC_EXPONENT };
  const [enc, sig] = await Promise.all([
    subtle.generateKey({ ...OAEP, ...params }, true, ['encrypt', 'decrypt']),
    subtle.generateKey({ ...PSS, ...params }, true, ['sign', 'verify']),
  ]);
  return DeviceKeys.fromKeys({
    encPrivate: enc.privateKey,
    encPublic: enc.publicKey,
    sigPrivate: sig.privateKey,
    sigPublic: sig.publicKey,
  });
}

async function identityPair(privateKey, publicKey) {
  const spki = await spkiOf(publicKey);
  return Object.freeze({ privateKey, publicKey, spki, kid: await kidOf(publicKey) });
}

/**
 * A fresh identity key pair (RSA-PSS, §7) of `bits` bits, e = 65537, with an extractable
 * private key (so it can be locked and wrapped): `{privateKey, publicKey, spki, kid}`.
 * @returns {Promise<{privateKey: CryptoKey, publicKey: CryptoKey, spki: Uint8Array, kid: string}>}
 */
export async function generateIdentityKey(bits = DEFAULT_KEY_BITS) {
  if (!ALLOWED_KEY_BITS.includes(bits)) throw new RangeError(`bits must be one of ${ALLOWED_KEY_BITS}`);
  const pair = await subtle.generateKey({ ...PSS, modulusLength: bits, publicExponent: PUBLIC_EXPONENT }, true, ['sign', 'verify']);
  return identityPair(pair.privateKey, pair.publicKey);
}

async function importPrivatePair(pkcs8, algorithm, usages, extractable) {
  const [privateUsage, publicUsage] = usages;
  const probe = await subtle.importKey('pkcs8', pkcs8, algorithm, true, [privateUsage]);
  const { kty, n, e } = await subtle.exportKey('jwk', probe);
  const publicKey = await subtle.importKey('jwk', { kty, n, e }, algorithm, true, [publicUsage]);
  const privateKey = extractable
    ? probe
    : await subtle.importKey('pkcs8', pkcs8, algorithm, false, [privateUsage]);
  return { privateKey, publicKey };
}

async function importPrivate(pkcs8, algorithm, usages, extractable) {
  let pair;
  try {
    pair = await importPrivatePair(pkcs8, algorithm, usages, extractable);
  } catch {
    throw new ProtocolError('invalid_key', 'not an RSA private key');
  }
  checkKeyParameters(pair.publicKey);
  return pair;
}

/**
 * Import an identity private key (PKCS#8 DER, Uint8Array), checked like a public key
 * (else `invalid_key`), as an identity pair `{privateKey, publicKey, spki, kid}`; the
 * private key is non-extractable unless `extractable`.
 * @returns {Promise<{privateKey: CryptoKey, publicKey: CryptoKey, spki: Uint8Array, kid: string}>}
 */
export async function identityKeyFromPkcs8(pkcs8, { extractable = false } = {}) {
  const { privateKey, publicKey } = await importPrivate(pkcs8, PSS, ['sign', 'verify'], extractable);
  return identityPair(privateKey, publicKey);
}

/**
 * Import a device's PKCS#8 DER private keys (Uint8Array): two, or three with the
 * identity key `idPkcs8`. The private CryptoKeys are non-extractable unless
 * `extractable`. Unusable keys, or two that are the same key, throw
 * ProtocolError('invalid_key'). (The v1 call `deviceKeysFromPkcs8(enc, sig, {extractable})`
 * still works: an options object in third place is taken as the options.)
 * @returns {Promise<DeviceKeys>}
 */
export async function deviceKeysFromPkcs8(encPkcs8, sigPkcs8, idPkcs8 = null, options = {}) {
  if (isPlainObject(idPkcs8)) [idPkcs8, options] = [null, idPkcs8];
  const { extractable = false } = options ?? {};
  const enc = await importPrivate(encPkcs8, OAEP, ['decrypt', 'encrypt'], extractable);
  const sig = await importPrivate(sigPkcs8, PSS, ['sign', 'verify'], extractable);
  const id = idPkcs8 == null ? null : await importPrivate(idPkcs8, PSS, ['sign', 'verify'], extractable);
  return DeviceKeys.fromKeys({
    encPrivate: enc.privateKey,
    encPublic: enc.publicKey,
    sigPrivate: sig.privateKey,
    sigPublic: sig.publicKey,
    idPrivate: id?.privateKey ?? null,
    idPublic: id?.publicKey ?? null,
  });
}

/** RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature of `message` by `privateKey`. @returns {Promise<Uint8Array>} */
export async function pssSign(privateKey, message) {
  return new Uint8Array(await subtle.sign(PSS_PARAMS, privateKey, message));
}

/** Whether `signature` is `publicKey`'s RSA-PSS signature of `message`; never throws. @returns {Promise<boolean>} */
export async function pssVerify(publicKey, message, signature) {
  try {
    return await subtle.verify(PSS_PARAMS, publicKey, signature, message);
  } catch {
    return false;
  }
}

// --- device proof (§1) ----------------------------------------------------------------

/** `e2ee-chat/v1/device|<userId>|<encKid>|<sigKid>` as UTF-8. @returns {Uint8Array} */
export function deviceProofMessage(userId, encKid, sigKid) {
  requireId(userId, 'user_id');
  if (!isKid(encKid) || !isKid(sigKid)) {
    throw new ProtocolError('bad_request', 'kids must be 64 lowercase hex digits');
  }
  return encoder.encode(`e2ee-chat/v1/device|${userId}|${encKid}|${sigKid}`);
}

/** The base64 proof of possession for registering `keys` as `userId`'s device. */
export async function signDeviceProof(keys, userId) {
  return b64encode(await pssSign(keys.sigPrivate, deviceProofMessage(userId, keys.encKid, keys.sigKid)));
}

/**
 * Whether `proof` (base64) is `sigPublic`'s signature of the device message. Malformed
 * input throws ProtocolError('bad_request'); a wrong signature resolves false.
 */
export async function verifyDeviceProof(sigPublic, userId, encKid, sigKid, proof) {
  const signature = b64decode(proof);
  return pssVerify(sigPublic, deviceProofMessage(userId, encKid, sigKid), signature);
}

// --- message envelope (§2) ------------------------------------------------------------

/**
 * A of a v2 envelope (§2):
 * `e2ee-chat/v2/msg|<conversationId>|<senderId>|<clientMsgId>|<sigKid>|<n>|<head>`.
 * Malformed parts throw ProtocolError('bad_request').
 */
export function messageAad(conversationId, senderId, clientMsgId, sigKid, n, head) {
  requireId(conversationId, 'conversation_id');
  requireId(senderId, 'sender_id');
  if (!isClientMsgId(clientMsgId)) throw new ProtocolError('bad_request', 'client_msg_id must be a lowercase UUID');
  if (!isKid(sigKid)) throw new ProtocolError('bad_request', 'sig_kid must be a kid');
  if (!isCounter(n)) throw new ProtocolError('bad_request', 'n must be an integer from 1 to 2^53-1');
  if (!isHead(head)) throw new ProtocolError('bad_request', 'head must be empty or a record hash');
  return `e2ee-chat/v2/msg|${conversationId}|${senderId}|${clientMsgId}|${sigKid}|${n}|${head}`;
}

/** A of a v1 envelope: `e2ee-chat/v1/msg|<conversationId>|<senderId>|<clientMsgId>`. */
export function messageAadV1(conversationId, senderId, clientMsgId) {
  requireId(conversationId, 'conversation_id');
  requireId(senderId, 'sender_id');
  if (!isClientMsgId(clientMsgId)) throw new ProtocolError('bad_request', 'client_msg_id must be a lowercase UUID');
  return `e2ee-chat/v1/msg|${conversationId}|${senderId}|${clientMsgId}`;
}

/** A of `envelope` by its own `v`: v2 from its `sig_kid`, `n` and `head`, else v1. */
export function envelopeAad(envelope, conversationId, senderId, clientMsgId) {
  if (envelope?.v === 1) return messageAadV1(conversationId, senderId, clientMsgId);
  return messageAad(conversationId, senderId, clientMsgId, envelope?.sig_kid, envelope?.n, envelope?.head);
}

/** S of §2 as UTF-8, built from the envelope's own base64 strings. @returns {Uint8Array} */
export function signedString(aad, iv, ct, kc) {
  return encoder.encode(`${aad}|${iv}|${ct}|${kc}`);
}

/** HMAC-SHA256(K, "e2ee-chat/v1/key-commitment"). @returns {Promise<Uint8Array>} */
export async function keyCommitment(contentKey) {
  const key = await subtle.importKey('raw', contentKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', key, KEY_COMMITMENT_LABEL));
}

/** The plaintext of a text message; over 16,000 characters (code points) is `too_large`. */
export function textMessage(text) {
  if (typeof text !== 'string') throw new ProtocolError('bad_request', 'text must be a string');
  if (Array.from(text).length > MAX_TEXT_CHARS) {
    throw new ProtocolError('too_large', `text is longer than ${MAX_TEXT_CHARS} characters`);
  }
  return { type: 'text', text };
}

/** Compact UTF-8 JSON of a plain object (the bytes Python's encode_plaintext gives). */
export function encodePlaintext(plaintext) {
  if (!isPlainObject(plaintext)) throw new ProtocolError('bad_request', 'plaintext must be a JSON object');
  return encoder.encode(JSON.stringify(plaintext));
}

function envelopeFields(envelope) {
  if (!isPlainObject(envelope)) throw new ProtocolError('bad_request', 'envelope must be a JSON object');
  if (envelope.v !== 1 && envelope.v !== 2) throw new ProtocolError('bad_request', 'envelope v must be 1 or 2');
  return envelope.v === 1 ? ENVELOPE_FIELDS_V1 : ENVELOPE_FIELDS;
}

/**
 * Check the shape of §2 and §6 for the envelope's `v` (2, or 1 as stored before the
 * upgrade): exactly its fields, canonical base64, sizes, `n` and `head`. Throws
 * ProtocolError('bad_request'); keys and signature are not checked here.
 */
export function validateEnvelope(envelope) {
  const fields = envelopeFields(envelope);
  if (!hasExactly(envelope, fields)) throw new ProtocolError('bad_request', `envelope must have exactly ${fields}`);
  if (envelope.v === 2) {
    if (!isCounter(envelope.n)) throw new ProtocolError('bad_request', 'n must be an integer from 1 to 2^53-1');
    if (!isHead(envelope.head)) throw new ProtocolError('bad_request', 'head must be empty or a record hash');
  }
  b64decode(envelope.iv, IV_BYTES);
  b64decode(envelope.kc, 32);
  if (b64decode(envelope.ct).length < TAG_BYTES) throw new ProtocolError('bad_request', 'ct is shorter than the GCM tag');
  if (b64decode(envelope.sig).length === 0) throw new ProtocolError('bad_request', 'sig is empty');
  if (!isKid(envelope.sig_kid)) throw new ProtocolError('bad_request', 'sig_kid must be a kid');
  const entries = isPlainObject(envelope.keys) ? Object.entries(envelope.keys) : [];
  if (entries.length === 0) throw new ProtocolError('bad_request', 'keys must be a non-empty object');
  for (const [kid, wrapped] of entries) {
    if (!isKid(kid) || b64decode(wrapped).length === 0) {
      throw new ProtocolError('bad_request', 'keys must map kids to base64 wrapped keys');
    }
  }
}

function aesGcm(iv, aad) {
  const additionalData = typeof aad === 'string' ? encoder.encode(aad) : aad;
  return { name: 'AES-GCM', iv, additionalData, tagLength: TAG_BYTES * 8 };
}

function freshBytes(length) {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

/** The parts every envelope shares: iv, ct, kc, keys, sig_kid, sig (over S of `aad`). */
async function seal(plaintext, aad, senderKeys, recipientKeys, contentKey, iv) {
  if (contentKey.length !== CONTENT_KEY_BYTES || iv.length !== IV_BYTES) {
    throw new RangeError('contentKey must be 32 bytes and iv 12 bytes');
  }
  const recipients = Object.entries(recipientKeys);
  if (recipients.length === 0) throw new ProtocolError('bad_request', 'no recipients');
  const aesKey = await subtle.importKey('raw', contentKey, 'AES-GCM', false, ['encrypt']);
  const ct = b64encode(await subtle.encrypt(aesGcm(iv, aad), aesKey, encodePlaintext(plaintext)));
  const wrapped = await Promise.all(
    recipients.map(async ([kid, publicKey]) => {
      if ((await kidOf(publicKey)) !== kid) throw new ProtocolError('invalid_key', `recipient key does not match kid ${kid}`);
      return [kid, b64encode(await subtle.encrypt(OAEP, publicKey, contentKey))];
    }),
  );
  const ivB64 = b64encode(iv);
  const kc = b64encode(await keyCommitment(contentKey));
  const sig = b64encode(await pssSign(senderKeys.sigPrivate, signedString(aad, ivB64, ct, kc)));
  return { iv: ivB64, ct, kc, keys: Object.fromEntries(wrapped), sig_kid: senderKeys.sigKid, sig };
}

/**
 * Encrypt `plaintext` (a plain object) into a v2 envelope of §2. `n` is the sending
 * device's counter in this conversation and `head` the roster head hash its member list
 * comes from (`""` in a direct conversation). `recipientKeys` maps each recipient
 * device's enc kid to its RSA-OAEP public CryptoKey (the sender's own devices included);
 * a kid that is not its key's is `invalid_key`. `contentKey` (32 bytes) and `iv` (12
 * bytes) are fresh random unless given (for known-answer tests).
 * @returns {Promise<object>} `{v: 2, n, head, iv, ct, kc, keys, sig_kid, sig}`
 */
export async function sealEnvelope({
  plaintext, conversationId, senderId, clientMsgId, n, head, senderKeys, recipientKeys,
  contentKey = freshBytes(CONTENT_KEY_BYTES), iv = freshBytes(IV_BYTES),
}) {
  const aad = messageAad(conversationId, senderId, clientMsgId, senderKeys.sigKid, n, head);
  return { v: 2, n, head, ...(await seal(plaintext, aad, senderKeys, recipientKeys, contentKey, iv)) };
}

/**
 * A v1 envelope, as clients made before v2: for tests and known-answer vectors only
 * (the server refuses new ones). Options as sealEnvelope without `n` and `head`.
 * @returns {Promise<object>}
 */
export async function sealEnvelopeV1({
  plaintext, conversationId, senderId, clientMsgId, senderKeys, recipientKeys,
  contentKey = freshBytes(CONTENT_KEY_BYTES), iv = freshBytes(IV_BYTES),
}) {
  const aad = messageAadV1(conversationId, senderId, clientMsgId);
  return { v: 1, ...(await seal(plaintext, aad, senderKeys, recipientKeys, contentKey, iv)) };
}

/**
 * What the server checks: the shape, then `sig` over S by `sigPublic` (RSA-PSS
 * CryptoKey), for a v2 envelope or a v1 one by v1's rules. A malformed envelope or id
 * throws ProtocolError('bad_request'); a signature that does not verify, or a `sig_kid`
 * that is not `sigPublic`'s, resolves false.
 * @returns {Promise<boolean>}
 */
export async function verifyEnvelopeSignature(envelope, { conversationId, senderId, clientMsgId, sigPublic }) {
  validateEnvelope(envelope);
  const aad = envelopeAad(envelope, conversationId, senderId, clientMsgId);
  if (envelope.sig_kid !== (await kidOf(sigPublic))) return false;
  const message = signedString(aad, envelope.iv, envelope.ct, envelope.kc);
  return pssVerify(sigPublic, message, b64decode(envelope.sig));
}

function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

function decodePlaintext(data) {
  let value;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw new OpenError('plaintext is not UTF-8 JSON');
  }
  if (!isPlainObject(value)) throw new OpenError('plaintext is not a JSON object');
  return value;
}

async function decryptGcm(key, iv, aad, sealed, detail) {
  const aesKey = await subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt']);
  try {
    return new Uint8Array(await subtle.decrypt(aesGcm(iv, aad), aesKey, sealed));
  } catch {
    throw new OpenError(detail);
  }
}

/** K unwrapped from this device's entry and checked against `kc`; else OpenError. */
async function contentKeyOf(envelope, deviceKeys) {
  if (!Object.hasOwn(envelope.keys, deviceKeys.encKid)) throw new OpenError('no wrapped key for this device');
  let contentKey;
  try {
    contentKey = new Uint8Array(await subtle.decrypt(OAEP, deviceKeys.encPrivate, b64decode(envelope.keys[deviceKeys.encKid])));
  } catch {
    throw new OpenError('content key does not unwrap');
  }
  if (contentKey.length !== CONTENT_KEY_BYTES) throw new OpenError('content key is not 32 bytes');
  if (!constantTimeEqual(await keyCommitment(contentKey), b64decode(envelope.kc))) {
    throw new OpenError('key commitment does not match');
  }
  return contentKey;
}

function validatedAad(envelope, conversationId, senderId, clientMsgId) {
  try {
    validateEnvelope(envelope);
    return envelopeAad(envelope, conversationId, senderId, clientMsgId);
  } catch (error) {
    throw new OpenError(error.detail ?? String(error));
  }
}

async function openSteps(envelope, { conversationId, senderId, clientMsgId, deviceKeys, sigPublic }) {
  const aad = validatedAad(envelope, conversationId, senderId, clientMsgId);
  const contentKey = await contentKeyOf(envelope, deviceKeys);
  if (!(await verifyEnvelopeSignature(envelope, { conversationId, senderId, clientMsgId, sigPublic }))) {
    throw new OpenError('signature does not verify');
  }
  const data = await decryptGcm(contentKey, b64decode(envelope.iv), aad, b64decode(envelope.ct), 'ciphertext does not decrypt');
  return decodePlaintext(data);
}

function asOpenError(error) {
  return error instanceof OpenError ? error : new OpenError(String(error?.detail || error?.message || error));
}

/**
 * Unwrap, check the commitment (constant time) and signature, decrypt; resolve the JSON
 * object. Opens v2 envelopes and v1 ones by v1's rules (the caller tells them apart by
 * `v`). Options `{conversationId, senderId, clientMsgId, deviceKeys, sigPublic}`:
 * `sigPublic` is the sender device's RSA-PSS key, which the caller has checked belongs
 * to `senderId`. Every failure rejects with OpenError; no partial plaintext.
 * @returns {Promise<object>}
 */
export async function openEnvelope(envelope, options) {
  try {
    return await openSteps(envelope, options);
  } catch (error) {
    throw asOpenError(error);
  }
}

/**
 * A history key (§7.3): K of `envelope` unwrapped with this device's entry, checked
 * against `kc`, and wrapped (base64 RSA-OAEP) for `recipientPublic` (an RSA-OAEP
 * CryptoKey). OpenError if this device cannot unwrap it.
 * @returns {Promise<string>}
 */
export async function rewrapContentKey(envelope, deviceKeys, recipientPublic) {
  try {
    validateEnvelope(envelope);
    const contentKey = await contentKeyOf(envelope, deviceKeys);
    return b64encode(await subtle.encrypt(OAEP, recipientPublic, contentKey));
  } catch (error) {
    throw asOpenError(error);
  }
}

// --- identity keys and device certificates (§1, §7) -----------------------------------

function kidsMessage(label, userId, ...kidList) {
  requireId(userId, 'user_id');
  if (!kidList.every(isKid)) throw new ProtocolError('bad_request', 'kids must be 64 lowercase hex digits');
  return encoder.encode([`e2ee-chat/v2/${label}`, String(userId), ...kidList].join('|'));
}

/** `e2ee-chat/v2/identity|<userId>|<idKid>` as UTF-8. @returns {Uint8Array} */
export function identityProofMessage(userId, idKid) {
  return kidsMessage('identity', userId, idKid);
}

/** The base64 proof that `userId`'s identity key `pair` is held (§7.1). @returns {Promise<string>} */
export async function signIdentityProof(pair, userId) {
  const message = identityProofMessage(userId, await kidOf(pair.publicKey));
  return b64encode(await pssSign(pair.privateKey, message));
}

/**
 * Whether `proof` is `idPublic`'s signature of the identity message. Malformed input
 * throws ProtocolError('bad_request'); a wrong signature resolves false.
 * @returns {Promise<boolean>}
 */
export async function verifyIdentityProof(idPublic, userId, proof) {
  const signature = b64decode(proof);
  const message = identityProofMessage(userId, await kidOf(idPublic));
  return pssVerify(idPublic, message, signature);
}

/** `e2ee-chat/v2/device-cert|<userId>|<encKid>|<sigKid>|<idKid>` as UTF-8. @returns {Uint8Array} */
export function deviceCertMessage(userId, encKid, sigKid, idKid) {
  return kidsMessage('device-cert', userId, encKid, sigKid, idKid);
}

/** The base64 certificate by the identity `pair` for a device's two kids (§1). @returns {Promise<string>} */
export async function signDeviceCert(pair, userId, encKid, sigKid) {
  const message = deviceCertMessage(userId, encKid, sigKid, await kidOf(pair.publicKey));
  return b64encode(await pssSign(pair.privateKey, message));
}

/**
 * Whether `cert` certifies the device's kids under `idPublic`. Malformed input throws
 * ProtocolError('bad_request'); a wrong signature resolves false.
 * @returns {Promise<boolean>}
 */
export async function verifyDeviceCert(idPublic, userId, encKid, sigKid, cert) {
  const signature = b64decode(cert);
  const message = deviceCertMessage(userId, encKid, sigKid, await kidOf(idPublic));
  return pssVerify(idPublic, message, signature);
}

/** `e2ee-chat/v2/identity-upgrade|<userId>|<idKid>` as UTF-8 (§7.5). @returns {Uint8Array} */
export function identityUpgradeMessage(userId, idKid) {
  return kidsMessage('identity-upgrade', userId, idKid);
}

/** `{sig_kid, sig}`: a v1 device's signature that the new identity is its user's (§7.5). @returns {Promise<object>} */
export async function signIdentityUpgrade(deviceKeys, userId, idKid) {
  const signature = await pssSign(deviceKeys.sigPrivate, identityUpgradeMessage(userId, idKid));
  return { sig_kid: deviceKeys.sigKid, sig: b64encode(signature) };
}

/**
 * Whether `upgrade` (exactly `{sig_kid, sig}`) is `sigPublic`'s signature of the upgrade
 * message; false for another key. Malformed input throws ProtocolError('bad_request').
 * @returns {Promise<boolean>}
 */
export async function verifyIdentityUpgrade(sigPublic, userId, idKid, upgrade) {
  if (!hasExactly(upgrade, ['sig_kid', 'sig'])) throw new ProtocolError('bad_request', 'upgrade must be exactly {"sig_kid", "sig"}');
  if (!isKid(upgrade.sig_kid)) throw new ProtocolError('bad_request', 'upgrade sig_kid must be a kid');
  const signature = b64decode(upgrade.sig);
  const message = identityUpgradeMessage(userId, idKid);
  if (upgrade.sig_kid !== (await kidOf(sigPublic))) return false;
  return pssVerify(sigPublic, message, signature);
}

// --- linking a device (§7.2) -----------------------------------------------------------

/**
 * The first 20 hex digits of SHA-256 of
 * `e2ee-chat/v2/link-code|<userId>|<idKid>|<encKid>|<sigKid>`. @returns {Promise<string>}
 */
export async function linkCode(userId, idKid, encKid, sigKid) {
  const message = kidsMessage('link-code', userId, idKid, encKid, sigKid);
  return (await sha256Hex(message)).slice(0, LINK_CODE_CHARS);
}

/** A link code in five groups of four, for showing. */
export function formatLinkCode(code) {
  return code.match(/.{1,4}/g)?.join(' ') ?? '';
}

/** Whether `typed` is `code`, ignoring spaces and letter case. */
export function sameLinkCode(typed, code) {
  if (typeof typed !== 'string') return false;
  return typed.replace(/\s+/g, '').toLowerCase() === code.replace(/\s+/g, '').toLowerCase();
}

/** `e2ee-chat/v2/id-wrap|<userId>|<encKid>|<sigKid>` as UTF-8. @returns {Uint8Array} */
export function idWrapAad(userId, encKid, sigKid) {
  return kidsMessage('id-wrap', userId, encKid, sigKid);
}

/**
 * A §7.2 trust state: `{identities: {"<user id>": {id_kid, verified: bool}}}` (unknown
 * fields allowed); returns it, else throws ProtocolError('bad_request').
 */
export function checkTrustState(trust) {
  const identities = isPlainObject(trust) ? trust.identities : undefined;
  if (!isPlainObject(identities)) throw new ProtocolError('bad_request', 'trust must hold an identities object');
  for (const [userId, entry] of Object.entries(identities)) {
    if (!USER_KEY_RE.test(userId)) throw new ProtocolError('bad_request', 'trust identities are keyed by user id');
    if (!isPlainObject(entry) || !isKid(entry.id_kid) || typeof entry.verified !== 'boolean') {
      throw new ProtocolError('bad_request', 'a trusted identity is {"id_kid", "verified"}');
    }
  }
  return trust;
}

/**
 * `{ek, iv, ct}`: the identity private key of `pair` (which must be extractable) and
 * the approver's trust state for the new device whose encryption key is `encPublic`
 * (RSA-OAEP CryptoKey) and signing kid `sigKid` (§7.2 step 3). `wrapKey` (32 bytes) and
 * `iv` (12 bytes) are fresh random unless given (for known-answer tests).
 * @returns {Promise<{ek: string, iv: string, ct: string}>}
 */
export async function makeIdWrap(pair, trust, { userId, encPublic, sigKid, wrapKey = freshBytes(CONTENT_KEY_BYTES), iv = freshBytes(IV_BYTES) }) {
  if (wrapKey.length !== CONTENT_KEY_BYTES || iv.length !== IV_BYTES) {
    throw new RangeError('wrapKey must be 32 bytes and iv 12 bytes');
  }
  checkTrustState(trust);
  const aad = idWrapAad(userId, await kidOf(encPublic), sigKid);
  let pkcs8;
  try {
    pkcs8 = await subtle.exportKey('pkcs8', pair.privateKey);
  } catch {
    throw new ProtocolError('invalid_key', 'the identity private key is not extractable');
  }
  const payload = encodePlaintext({ id_pkcs8: b64encode(pkcs8), trust });
  const aesKey = await subtle.importKey('raw', wrapKey, 'AES-GCM', false, ['encrypt']);
  const ct = await subtle.encrypt(aesGcm(iv, aad), aesKey, payload);
  return {
    ek: b64encode(await subtle.encrypt(OAEP, encPublic, wrapKey)),
    iv: b64encode(iv),
    ct: b64encode(ct),
  };
}

async function openIdWrapSteps(idWrap, { userId, deviceKeys, extractable }) {
  if (!hasExactly(idWrap, ID_WRAP_FIELDS)) throw new OpenError('id_wrap must be exactly {"ek", "iv", "ct"}');
  const ek = b64decode(idWrap.ek);
  const iv = b64decode(idWrap.iv, IV_BYTES);
  const sealed = b64decode(idWrap.ct);
  const aad = idWrapAad(userId, deviceKeys.encKid, deviceKeys.sigKid);
  let wrapKey;
  try {
    wrapKey = new Uint8Array(await subtle.decrypt(OAEP, deviceKeys.encPrivate, ek));
  } catch {
    throw new OpenError('wrap key does not unwrap');
  }
  if (wrapKey.length !== CONTENT_KEY_BYTES || sealed.length < TAG_BYTES) {
    throw new OpenError('wrap key or ciphertext has the wrong size');
  }
  const payload = decodePlaintext(await decryptGcm(wrapKey, iv, aad, sealed, 'id_wrap does not decrypt'));
  if (!hasExactly(payload, ['id_pkcs8', 'trust'])) throw new OpenError('id_wrap payload must be exactly {"id_pkcs8", "trust"}');
  const identity = await identityKeyFromPkcs8(b64decode(payload.id_pkcs8), { extractable });
  return { identity, trust: checkTrustState(payload.trust) };
}

/**
 * `{identity, trust}` from an `id_wrap` made for `deviceKeys`: the identity pair (its
 * private key extractable only if `extractable`, which a device that will lock it in its
 * keystore needs) and the trust state. The caller checks that `identity.kid` is the
 * `id_kid` of its link code. Any failure (shape, unwrap, tag, payload) rejects with
 * OpenError.
 * @returns {Promise<{identity: {privateKey: CryptoKey, publicKey: CryptoKey, spki: Uint8Array, kid: string}, trust: object}>}
 */
export async function openIdWrap(idWrap, { userId, deviceKeys, extractable = false }) {
  try {
    return await openIdWrapSteps(idWrap, { userId, deviceKeys, extractable });
  } catch (error) {
    throw asOpenError(error);
  }
}

// --- safety numbers (§7.4) -------------------------------------------------------------

/**
 * One user's 30 digits: six 5-digit groups from SHA-256 of
 * `e2ee-chat/v2/safety|<userId>|<idKid>`. @returns {Promise<string>}
 */
export async function safetyDigits(userId, idKid) {
  const digest = new Uint8Array(await subtle.digest('SHA-256', kidsMessage('safety', userId, idKid)));
  let digits = '';
  for (let i = 0; i < 6; i += 1) {
    let value = 0;
    for (const byte of digest.subarray(5 * i, 5 * i + 5)) value = value * 256 + byte; // < 2^40: exact
    digits += String(value % 100000).padStart(5, '0');
  }
  return digits;
}

/** The 60 digits of two users' safety number: the numerically smaller user id's 30 first. @returns {Promise<string>} */
export async function safetyNumber(userA, idKidA, userB, idKidB) {
  let pairs = [[userA, idKidA], [userB, idKidB]];
  if (userB < userA || (userB === userA && idKidB < idKidA)) pairs = pairs.reverse();
  const [low, high] = await Promise.all(pairs.map(([user, kid]) => safetyDigits(user, kid)));
  return low + high;
}

/** 60 digits in 12 groups of 5. */
export function formatSafetyNumber(number) {
  return number.match(/.{1,5}/g)?.join(' ') ?? '';
}
