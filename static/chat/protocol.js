/**
 * The wire protocol of PROTOCOL.md §1, §2 and §6: keys, kids, proofs and message envelopes.
 *
 * Twin of chatclient/protocol.py with the same names in camelCase. WebCrypto only
 * (globalThis.crypto.subtle); runs in browsers and under Node 20.
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
export const ENVELOPE_FIELDS = ['v', 'iv', 'ct', 'kc', 'keys', 'sig_kid', 'sig'];

export const OAEP = { name: 'RSA-OAEP', hash: 'SHA-256' };
export const PSS = { name: 'RSA-PSS', hash: 'SHA-256' };
const PSS_PARAMS = { name: 'RSA-PSS', saltLength: 32 };
const PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);
const KEY_COMMITMENT_LABEL = encoder.encode('e2ee-chat/v1/key-commitment');
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KID_RE = /^[0-9a-f]{64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A protocol violation; `code` is an error code of PROTOCOL.md §6. */
export class ProtocolError extends Error {
  constructor(code, detail = '') {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'ProtocolError';
    this.code = code;
    this.detail = detail;
  }
}

/** A message that cannot be unwrapped, committed, verified or decrypted. */
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
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw new ProtocolError('bad_request', 'not canonical base64');
  if (length !== undefined && bytes.length !== length) {
    throw new ProtocolError('bad_request', `expected ${length} bytes of base64`);
  }
  return bytes;
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a, b) {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((value, i) => value === y[i]);
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

function requireId(value, name) {
  if (!Number.isSafeInteger(value)) throw new ProtocolError('bad_request', `${name} must be an integer`);
  return value;
}

// --- keys -----------------------------------------------------------------------------

/** The kid of a public key: hex SHA-256 of its SPKI DER. @returns {Promise<string>} */
export async function computeKid(spki) {
  return hex(await subtle.digest('SHA-256', spki));
}

/** The SPKI DER of a public CryptoKey. @returns {Promise<Uint8Array>} */
export async function spkiOf(publicKey) {
  return new Uint8Array(await subtle.exportKey('spki', publicKey));
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

/**
 * A device's two key pairs: RSA-OAEP (`encPrivate`, `encPublic`) and RSA-PSS
 * (`sigPrivate`, `sigPublic`), with their SPKI DER (`encSpki`, `sigSpki`) and kids.
 * Build one with DeviceKeys.fromKeys.
 */
export class DeviceKeys {
  constructor({ encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid }) {
    Object.assign(this, { encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid });
    Object.freeze(this);
  }

  /** Wrap four CryptoKeys, checking the public keys as importEncryptionKey does. */
  static async fromKeys({ encPrivate, encPublic, sigPrivate, sigPublic }) {
    checkKeyParameters(encPublic);
    checkKeyParameters(sigPublic);
    const encSpki = await spkiOf(encPublic);
    const sigSpki = await spkiOf(sigPublic);
    const [encKid, sigKid] = await Promise.all([computeKid(encSpki), computeKid(sigSpki)]);
    if (encKid === sigKid) throw new ProtocolError('invalid_key', 'encryption and signing keys must differ');
    return new DeviceKeys({ encPrivate, encPublic, sigPrivate, sigPublic, encSpki, sigSpki, encKid, sigKid });
  }
}

/**
 * Two fresh extractable RSA key pairs (OAEP, PSS) of `bits` bits, e = 65537.
 * @returns {Promise<DeviceKeys>}
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

/**
 * Import a device's two PKCS#8 DER private keys (Uint8Array); the private CryptoKeys
 * are non-extractable unless `extractable`. Unusable keys throw ProtocolError('invalid_key').
 * @returns {Promise<DeviceKeys>}
 */
export async function deviceKeysFromPkcs8(encPkcs8, sigPkcs8, { extractable = false } = {}) {
  let enc;
  let sig;
  try {
    enc = await importPrivatePair(encPkcs8, OAEP, ['decrypt', 'encrypt'], extractable);
    sig = await importPrivatePair(sigPkcs8, PSS, ['sign', 'verify'], extractable);
  } catch {
    throw new ProtocolError('invalid_key', 'not an RSA private key');
  }
  return DeviceKeys.fromKeys({
    encPrivate: enc.privateKey,
    encPublic: enc.publicKey,
    sigPrivate: sig.privateKey,
    sigPublic: sig.publicKey,
  });
}

async function pssSign(privateKey, message) {
  return new Uint8Array(await subtle.sign(PSS_PARAMS, privateKey, message));
}

async function pssVerify(publicKey, message, signature) {
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

/** A of §2: `e2ee-chat/v1/msg|<conversationId>|<senderId>|<clientMsgId>`. */
export function messageAad(conversationId, senderId, clientMsgId) {
  requireId(conversationId, 'conversation_id');
  requireId(senderId, 'sender_id');
  if (!isClientMsgId(clientMsgId)) {
    throw new ProtocolError('bad_request', 'client_msg_id must be a lowercase UUID');
  }
  return `e2ee-chat/v1/msg|${conversationId}|${senderId}|${clientMsgId}`;
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

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Compact UTF-8 JSON of a plain object (the bytes Python's encode_plaintext gives). */
export function encodePlaintext(plaintext) {
  if (!isPlainObject(plaintext)) throw new ProtocolError('bad_request', 'plaintext must be a JSON object');
  return encoder.encode(JSON.stringify(plaintext));
}

/**
 * Check the shape of §2 and §6: exactly its fields, canonical base64, sizes. Throws
 * ProtocolError('bad_request'); keys and signature are not checked here.
 */
export function validateEnvelope(envelope) {
  const fields = isPlainObject(envelope) ? Object.keys(envelope) : [];
  if (fields.length !== ENVELOPE_FIELDS.length || !ENVELOPE_FIELDS.every((f) => fields.includes(f))) {
    throw new ProtocolError('bad_request', `envelope must have exactly ${ENVELOPE_FIELDS}`);
  }
  if (envelope.v !== 1) throw new ProtocolError('bad_request', 'envelope v must be 1');
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
  return { name: 'AES-GCM', iv, additionalData: encoder.encode(aad), tagLength: TAG_BYTES * 8 };
}

/**
 * Encrypt `plaintext` (a plain object) into a §2 envelope. `recipientKeys` maps each
 * recipient device's enc kid to its RSA-OAEP public CryptoKey (the sender's own devices
 * included); a kid that is not its key's is `invalid_key`. `contentKey` (32 bytes) and
 * `iv` (12 bytes) are fresh random unless given (for known-answer tests).
 * @returns {Promise<object>}
 */
export async function sealEnvelope({
  plaintext,
  conversationId,
  senderId,
  clientMsgId,
  senderKeys,
  recipientKeys,
  contentKey = globalThis.crypto.getRandomValues(new Uint8Array(CONTENT_KEY_BYTES)),
  iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES)),
}) {
  if (contentKey.length !== CONTENT_KEY_BYTES || iv.length !== IV_BYTES) {
    throw new RangeError('contentKey must be 32 bytes and iv 12 bytes');
  }
  const recipients = Object.entries(recipientKeys);
  if (recipients.length === 0) throw new ProtocolError('bad_request', 'no recipients');
  const aad = messageAad(conversationId, senderId, clientMsgId);
  const aesKey = await subtle.importKey('raw', contentKey, 'AES-GCM', false, ['encrypt']);
  const ct = b64encode(await subtle.encrypt(aesGcm(iv, aad), aesKey, encodePlaintext(plaintext)));
  const keys = {};
  for (const [kid, publicKey] of recipients) {
    if ((await computeKid(await spkiOf(publicKey))) !== kid) {
      throw new ProtocolError('invalid_key', `recipient key does not match kid ${kid}`);
    }
    keys[kid] = b64encode(await subtle.encrypt(OAEP, publicKey, contentKey));
  }
  const ivB64 = b64encode(iv);
  const kc = b64encode(await keyCommitment(contentKey));
  const sig = b64encode(await pssSign(senderKeys.sigPrivate, signedString(aad, ivB64, ct, kc)));
  return { v: 1, iv: ivB64, ct, kc, keys, sig_kid: senderKeys.sigKid, sig };
}

/**
 * What the server checks: the shape, then `sig` over S by `sigPublic` (RSA-PSS CryptoKey).
 * A malformed envelope or id throws ProtocolError('bad_request'); a signature that does
 * not verify, or a `sig_kid` that is not `sigPublic`'s, resolves false.
 * @returns {Promise<boolean>}
 */
export async function verifyEnvelopeSignature(envelope, { conversationId, senderId, clientMsgId, sigPublic }) {
  validateEnvelope(envelope);
  const aad = messageAad(conversationId, senderId, clientMsgId);
  if (envelope.sig_kid !== (await computeKid(await spkiOf(sigPublic)))) return false;
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

async function openSteps(envelope, { conversationId, senderId, clientMsgId, deviceKeys, sigPublic }) {
  let aad;
  try {
    validateEnvelope(envelope);
    aad = messageAad(conversationId, senderId, clientMsgId);
  } catch (error) {
    throw new OpenError(error.detail);
  }
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
  if (!(await verifyEnvelopeSignature(envelope, { conversationId, senderId, clientMsgId, sigPublic }))) {
    throw new OpenError('signature does not verify');
  }
  const aesKey = await subtle.importKey('raw', contentKey, 'AES-GCM', false, ['decrypt']);
  let data;
  try {
    data = await subtle.decrypt(aesGcm(b64decode(envelope.iv), aad), aesKey, b64decode(envelope.ct));
  } catch {
    throw new OpenError('ciphertext does not decrypt');
  }
  return decodePlaintext(data);
}

/**
 * Unwrap, check the commitment (constant time) and signature, decrypt; resolve the JSON
 * object. `sigPublic` is the sender device's RSA-PSS key, which the caller has checked
 * belongs to `senderId`. Every failure rejects with OpenError; no partial plaintext.
 * @returns {Promise<object>}
 */
export async function openEnvelope(envelope, options) {
  try {
    return await openSteps(envelope, options);
  } catch (error) {
    throw error instanceof OpenError ? error : new OpenError(String(error?.message ?? error));
  }
}
