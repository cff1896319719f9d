/**
 * Encrypted attachments of PROTOCOL.md §10.2: Padmé padding, chunked AES-256-GCM with
 * per-chunk nonces and aad, streaming encryption and decryption with every reader check,
 * the `file` payload and its validation, and file-name cleaning.
 *
 * Twin of chatclient/attachments.py with the same names in camelCase; the streaming
 * methods are async. WebCrypto has no incremental SHA-256, so (unlike Python, which hashes
 * as it goes) the sender hashes the whole file once with `fileSha256` before encrypting,
 * and `FileDecryptor` collects the plaintext in one buffer of `size` bytes that it hashes
 * in `finish()`. One `crypto.subtle` call per 64 KiB chunk, with the key imported once.
 * A reader refuses a file with `FileRefused(code, detail)`. Runs in browsers and Node 20.
 * @module attachments
 */

import { ProtocolError, b64decode, hex, isClientMsgId, MAX_TEXT_CHARS } from './protocol.js';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

export const FILE_CHUNK = 65536;
export const FILE_TAG = 16;
export const FILE_KEY_BYTES = 32;
export const FILE_PREFIX_BYTES = 8;
export const MIN_PADDED = 256;
export const MAX_FILE_BYTES = 100 * 2 ** 20;
export const THUMB_MAX_BYTES = 16384;
export const MAX_NAME_CHARS = 255;
export const MAX_MIME_CHARS = 255;
export const MAX_CLEAN_NAME_CHARS = 120;
export const MAX_DIMENSION = 65535;
/** The types shown inline (as images, never as documents). */
export const INLINE_IMAGE_TYPES = Object.freeze(new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']));
export const FILE_REFUSED_CODES = Object.freeze(['bad_length', 'bad_chunk', 'bad_last', 'bad_padding', 'bad_hash', 'bad_meta']);
export const FILE_AAD_LABEL = 'e2ee-chat/v2/file';

const BLOB_ID_RE = /^[A-Za-z0-9_-]{22}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const MIME_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;
const MAX_EXTENSION_CHARS = 16;
const SEALED_CHUNK = FILE_CHUNK + FILE_TAG;

/**
 * A file a reader must not show: `code` says which §10.2 check failed (`bad_length`,
 * `bad_chunk`, `bad_last`, `bad_padding`, `bad_hash`, `bad_meta`), `detail` says what.
 */
export class FileRefused extends Error {
  constructor(code, detail = '') {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'FileRefused';
    this.code = code;
    this.detail = detail;
  }
}

// --- sizes ------------------------------------------------------------------------------

const bitLength = (n) => BigInt(n.toString(2).length); // n > 0n

/** P = max(256, Padmé(length)) of §10.2, in exact (BigInt) integer arithmetic. */
export function padme(length) {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
  if (length < MIN_PADDED) return MIN_PADDED;
  const big = BigInt(length);
  const e = bitLength(big) - 1n; // floor(log2 L)
  const s = bitLength(e); // floor(log2 E) + 1
  const mask = (1n << (e - s)) - 1n;
  return Number((big + mask) & ~mask);
}

/** The number of 64 KiB chunks of a padded file of `padded` (≥ 1) bytes. */
export function chunkCount(padded) {
  if (!Number.isSafeInteger(padded) || padded < 1) throw new RangeError('padded must be a positive integer');
  return Math.ceil(padded / FILE_CHUNK);
}

/** The blob length of a `size`-byte file: P + 16 × ⌈P / 65536⌉. */
export function blobSize(size) {
  const padded = padme(size);
  return padded + FILE_TAG * chunkCount(padded);
}

/** Whether `length` is `blobSize(L)` for some file size L ≤ MAX_FILE_BYTES. */
export function isBlobSize(length) {
  if (!Number.isSafeInteger(length) || length < blobSize(0) || length > blobSize(MAX_FILE_BYTES)) return false;
  const count = Math.ceil(length / SEALED_CHUNK);
  const padded = length - FILE_TAG * count;
  return padded >= MIN_PADDED && padme(padded) === padded && chunkCount(padded) === count;
}

/** `e2ee-chat/v2/file|<i>|<1 if last else 0>` as UTF-8. */
export function fileChunkAad(index, last) {
  return encoder.encode(`${FILE_AAD_LABEL}|${index}|${last ? 1 : 0}`);
}

/** The 12-byte nonce of chunk `index`: `prefix || uint32_be(index)`. */
export function fileChunkNonce(prefix, index) {
  if (prefix.length !== FILE_PREFIX_BYTES || !Number.isInteger(index) || index < 0 || index >= 2 ** 32) {
    throw new RangeError('prefix must be 8 bytes and index 0..2^32-1');
  }
  const nonce = new Uint8Array(12);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(8, index);
  return nonce;
}

function gcm(prefix, index, last) {
  return { name: 'AES-GCM', iv: fileChunkNonce(prefix, index), additionalData: fileChunkAad(index, last), tagLength: 128 };
}

function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('expected bytes (Uint8Array, ArrayBuffer or a typed array view)');
}

function concat(parts) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Lowercase hex SHA-256 of a Blob/File (read once), an ArrayBuffer or a typed array:
 * one `crypto.subtle.digest` over the whole file. @returns {Promise<string>}
 */
export async function fileSha256(data) {
  const bytes = typeof Blob !== 'undefined' && data instanceof Blob ? await data.arrayBuffer() : bytesOf(data);
  return hex(await subtle.digest('SHA-256', bytes));
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// --- streaming encryption ---------------------------------------------------------------

/**
 * Encrypts a file of `size` bytes into its §10.2 blob, chunk by chunk.
 * `new FileEncryptor(size, {key, prefix})`: key (32 bytes) and prefix (8) are fresh random
 * unless given. `await update(bytes)` gives the ciphertext of every chunk completed so far
 * (maybe empty); `await finish()` pads with zeros to P and gives the rest, the final chunk
 * marked last. Await each call before the next. Feeding more or fewer than `size` bytes
 * throws; a size over MAX_FILE_BYTES is `ProtocolError('too_large')`. Fed in pieces of
 * FILE_CHUNK bytes, each `update` returns its chunk's ciphertext without a copy; larger
 * pieces are encrypted concurrently and joined. Unlike Python's, it does not hash: the
 * caller takes `fileSha256` of the file (`encryptFile` sets `sha256`).
 */
export class FileEncryptor {
  #cryptoKey;
  #count;
  #index = 0;
  #fed = 0;
  #pending = new Uint8Array(FILE_CHUNK);
  #pendingLength = 0;
  #busy = false;
  #finished = false;

  constructor(size, { key = null, prefix = null } = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a non-negative integer');
    if (size > MAX_FILE_BYTES) throw new ProtocolError('too_large', `files are at most ${MAX_FILE_BYTES} bytes`);
    this.key = key === null ? randomBytes(FILE_KEY_BYTES) : Uint8Array.from(key);
    this.prefix = prefix === null ? randomBytes(FILE_PREFIX_BYTES) : Uint8Array.from(prefix);
    if (this.key.length !== FILE_KEY_BYTES || this.prefix.length !== FILE_PREFIX_BYTES) {
      throw new RangeError('key must be 32 bytes and prefix 8 bytes');
    }
    this.size = size;
    this.padded = padme(size);
    this.blobSize = blobSize(size);
    this.sha256 = null;
    this.#count = chunkCount(this.padded);
    this.#cryptoKey = subtle.importKey('raw', this.key, 'AES-GCM', false, ['encrypt']);
  }

  async #seal(chunks) {
    const key = await this.#cryptoKey;
    const first = this.#index;
    this.#index += chunks.length;
    const sealed = await Promise.all(
      chunks.map((chunk, i) => subtle.encrypt(gcm(this.prefix, first + i, first + i === this.#count - 1), key, chunk)),
    );
    return concat(sealed.map((buffer) => new Uint8Array(buffer)));
  }

  #enter() {
    if (this.#finished) throw new Error('the encryptor is finished');
    if (this.#busy) throw new Error('await the previous call first');
    this.#busy = true;
  }

  /** The ciphertext of the chunks that `data` completes. @returns {Promise<Uint8Array>} */
  async update(data) {
    this.#enter();
    try {
      let view = bytesOf(data);
      if (this.#fed + view.length > this.size) throw new RangeError(`more than the announced ${this.size} bytes`);
      this.#fed += view.length;
      const chunks = [];
      if (this.#pendingLength) {
        const take = Math.min(FILE_CHUNK - this.#pendingLength, view.length);
        this.#pending.set(view.subarray(0, take), this.#pendingLength);
        this.#pendingLength += take;
        view = view.subarray(take);
        // The final chunk always waits for finish(), which marks it last.
        if (this.#pendingLength < FILE_CHUNK || this.#index === this.#count - 1) return new Uint8Array(0);
        chunks.push(this.#pending.slice());
        this.#pendingLength = 0;
      }
      let offset = 0;
      while (view.length - offset >= FILE_CHUNK && this.#index + chunks.length < this.#count - 1) {
        chunks.push(view.subarray(offset, offset + FILE_CHUNK));
        offset += FILE_CHUNK;
      }
      this.#pending.set(view.subarray(offset), 0);
      this.#pendingLength = view.length - offset;
      return chunks.length ? await this.#seal(chunks) : new Uint8Array(0);
    } finally {
      this.#busy = false;
    }
  }

  /** Pad with zeros to P and give the remaining ciphertext. @returns {Promise<Uint8Array>} */
  async finish() {
    this.#enter();
    try {
      if (this.#fed !== this.size) throw new RangeError(`${this.#fed} bytes fed, ${this.size} announced`);
      this.#finished = true;
      const rest = new Uint8Array(this.padded - this.#index * FILE_CHUNK);
      rest.set(this.#pending.subarray(0, this.#pendingLength));
      this.#pending = null;
      const chunks = [];
      for (let offset = 0; offset < rest.length; offset += FILE_CHUNK) chunks.push(rest.subarray(offset, offset + FILE_CHUNK));
      return await this.#seal(chunks);
    } finally {
      this.#busy = false;
    }
  }
}

/** `{blob, encryptor}` for a whole file in memory (encryptor.sha256 set): small files and tests. */
export async function encryptFile(data, { key = null, prefix = null } = {}) {
  const bytes = bytesOf(data);
  const encryptor = new FileEncryptor(bytes.length, { key, prefix });
  const blob = concat([await encryptor.update(bytes), await encryptor.finish()]);
  encryptor.sha256 = await fileSha256(bytes);
  return { blob, encryptor };
}

// --- streaming decryption ---------------------------------------------------------------

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function metaFields(meta) {
  if (!isPlainObject(meta)) throw new FileRefused('bad_meta', 'file must be a JSON object');
  let key;
  let prefix;
  try {
    key = b64decode(meta.key, FILE_KEY_BYTES);
    prefix = b64decode(meta.prefix, FILE_PREFIX_BYTES);
  } catch (error) {
    if (error instanceof ProtocolError) throw new FileRefused('bad_meta', 'key must be 32 and prefix 8 bytes of base64');
    throw error;
  }
  const { size, sha256 } = meta;
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_BYTES) {
    throw new FileRefused('bad_meta', `size must be an integer 0..${MAX_FILE_BYTES}`);
  }
  if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) {
    throw new FileRefused('bad_meta', 'sha256 must be 64 lowercase hex digits');
  }
  return { key, prefix, size, sha256 };
}

/**
 * Decrypts and checks a §10.2 blob against its `file` object, chunk by chunk.
 * Only `key`, `prefix`, `size` and `sha256` of `fileMeta` are used (malformed: `bad_meta`,
 * thrown by the constructor). `await update(bytes)` gives the plaintext (without padding)
 * of the chunks that `bytes` completes, after each passed its tag, last-flag and padding
 * checks: a view into the one `size`-byte buffer the decryptor fills. `await finish()`
 * checks the total length and the SHA-256 and gives that whole buffer. Nothing is genuine
 * until `finish()` resolved. Every failure rejects with `FileRefused`, in the same order as
 * Python's: more bytes than `blobSize(size)` (`bad_length`, as soon as they arrive); per
 * chunk in order, a tag that fails (`bad_chunk`) unless it holds under the other last flag
 * (`bad_last`), then non-zero padding (`bad_padding`); at the end, fewer bytes
 * (`bad_length`), then the hash (`bad_hash`). Await each call before the next.
 */
export class FileDecryptor {
  #cryptoKey;
  #count;
  #index = 0;
  #received = 0;
  #pending = null;
  #pendingLength = 0;
  #plaintext;
  #busy = false;
  #finished = false;

  constructor(fileMeta) {
    const { key, prefix, size, sha256 } = metaFields(fileMeta);
    Object.assign(this, { key, prefix, size, sha256 });
    this.padded = padme(size);
    this.blobSize = blobSize(size);
    this.#count = chunkCount(this.padded);
    this.#plaintext = new Uint8Array(size);
    this.#cryptoKey = subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt']);
  }

  #chunkLength(index) {
    return index < this.#count - 1 ? SEALED_CHUNK : this.padded - FILE_CHUNK * (this.#count - 1) + FILE_TAG;
  }

  #enter() {
    if (this.#finished) throw new Error('the decryptor is finished');
    if (this.#busy) throw new Error('await the previous call first');
    this.#busy = true;
  }

  async #open(sealed) {
    const key = await this.#cryptoKey;
    const first = this.#index;
    const results = await Promise.allSettled(
      sealed.map((chunk, i) => subtle.decrypt(gcm(this.prefix, first + i, first + i === this.#count - 1), key, chunk)),
    );
    const start = Math.min(first * FILE_CHUNK, this.size);
    for (const [i, result] of results.entries()) {
      const index = first + i;
      const last = index === this.#count - 1;
      if (result.status === 'rejected') {
        try {
          await subtle.decrypt(gcm(this.prefix, index, !last), key, sealed[i]);
        } catch {
          throw new FileRefused('bad_chunk', `chunk ${index} does not decrypt`);
        }
        throw new FileRefused('bad_last', `chunk ${index} has the wrong last flag`);
      }
      const chunk = new Uint8Array(result.value);
      const offset = index * FILE_CHUNK;
      const keep = Math.max(0, Math.min(chunk.length, this.size - offset));
      for (let j = keep; j < chunk.length; j += 1) {
        if (chunk[j] !== 0) throw new FileRefused('bad_padding', 'the padding is not zeros');
      }
      if (keep) this.#plaintext.set(keep === chunk.length ? chunk : chunk.subarray(0, keep), offset);
      this.#index = index + 1;
    }
    return this.#plaintext.subarray(start, Math.min(this.#index * FILE_CHUNK, this.size));
  }

  /** The checked plaintext of the chunks that `data` completes. @returns {Promise<Uint8Array>} */
  async update(data) {
    this.#enter();
    try {
      let view = bytesOf(data);
      this.#received += view.length;
      if (this.#received > this.blobSize) throw new FileRefused('bad_length', `the blob is longer than ${this.blobSize} bytes`);
      const sealed = [];
      let index = this.#index;
      if (this.#pendingLength) {
        const length = this.#chunkLength(index);
        const take = Math.min(length - this.#pendingLength, view.length);
        this.#pending.set(view.subarray(0, take), this.#pendingLength);
        this.#pendingLength += take;
        view = view.subarray(take);
        if (this.#pendingLength < length) return new Uint8Array(0);
        sealed.push(this.#pending.subarray(0, length));
        this.#pendingLength = 0;
        index += 1;
      }
      let offset = 0;
      while (index < this.#count && view.length - offset >= this.#chunkLength(index)) {
        const length = this.#chunkLength(index);
        sealed.push(view.subarray(offset, offset + length));
        offset += length;
        index += 1;
      }
      const out = sealed.length ? await this.#open(sealed) : new Uint8Array(0);
      if (offset < view.length) {
        this.#pending ??= new Uint8Array(SEALED_CHUNK);
        this.#pending.set(view.subarray(offset), 0);
        this.#pendingLength = view.length - offset;
      }
      return out;
    } finally {
      this.#busy = false;
    }
  }

  /** Check the whole blob came and the SHA-256; the whole plaintext. @returns {Promise<Uint8Array>} */
  async finish() {
    this.#enter();
    try {
      this.#finished = true;
      if (this.#received !== this.blobSize || this.#index !== this.#count) {
        throw new FileRefused('bad_length', `the blob is shorter than ${this.blobSize} bytes`);
      }
      if ((await fileSha256(this.#plaintext)) !== this.sha256) {
        throw new FileRefused('bad_hash', "the file's SHA-256 does not match");
      }
      return this.#plaintext;
    } finally {
      this.#busy = false;
    }
  }
}

/** The checked plaintext of a whole blob in memory: small files and tests. @returns {Promise<Uint8Array>} */
export async function decryptFile(fileMeta, blob) {
  const decryptor = new FileDecryptor(fileMeta);
  await decryptor.update(blob);
  return decryptor.finish();
}

// --- the file payload (§10.1, §10.2) ----------------------------------------------------

const badMeta = (detail) => new FileRefused('bad_meta', detail);
const isInt = (value, low, high) => Number.isSafeInteger(value) && value >= low && value <= high;
const codePoints = (text) => Array.from(text).length;

/**
 * Check a `file` payload `{type: "file", file: {…}, text?, reply_to?}` field by field and
 * return its `file` object; anything malformed throws `FileRefused('bad_meta')`. Unknown
 * fields are ignored. (Like protocol.js, an integer written `1.0` in JSON counts.)
 */
export function validateFilePayload(obj) {
  if (!isPlainObject(obj) || obj.type !== 'file') throw badMeta('the payload must be an object of type "file"');
  const meta = obj.file;
  metaFields(meta);
  if (typeof meta.blob !== 'string' || !BLOB_ID_RE.test(meta.blob)) throw badMeta('blob must be 22 characters of URL-safe base64');
  const { name, mime } = meta;
  if (typeof name !== 'string' || codePoints(name) < 1 || codePoints(name) > MAX_NAME_CHARS) {
    throw badMeta(`name must be 1..${MAX_NAME_CHARS} characters`);
  }
  if (!isMimeType(mime)) {
    throw badMeta('mime must be a type/subtype of at most 255 characters');
  }
  for (const field of ['width', 'height']) {
    if (Object.hasOwn(meta, field) && !isInt(meta[field], 1, MAX_DIMENSION)) {
      throw badMeta(`${field} must be an integer 1..${MAX_DIMENSION}`);
    }
  }
  if (Object.hasOwn(meta, 'thumb')) {
    let thumb;
    try {
      thumb = b64decode(meta.thumb);
    } catch (error) {
      if (error instanceof ProtocolError) throw badMeta('thumb must be canonical base64');
      throw error;
    }
    if (thumb.length < 1 || thumb.length > THUMB_MAX_BYTES) throw badMeta(`thumb must be 1..${THUMB_MAX_BYTES} bytes`);
  }
  if (Object.hasOwn(obj, 'text') && (typeof obj.text !== 'string' || codePoints(obj.text) > MAX_TEXT_CHARS)) {
    throw badMeta(`text must be a string of at most ${MAX_TEXT_CHARS} characters`);
  }
  if (Object.hasOwn(obj, 'reply_to')) {
    const ref = obj.reply_to;
    if (!isPlainObject(ref) || !isInt(ref.sender_id, 1, Number.MAX_SAFE_INTEGER) || !isClientMsgId(ref.client_msg_id)) {
      throw badMeta('reply_to must be {sender_id, client_msg_id}');
    }
  }
  return meta;
}

/**
 * The plaintext of a file message: `{type: "file", file: meta}` with the caption `text`
 * and `replyTo` (as `reply_to`) when given; checked by `validateFilePayload`.
 */
export function filePayload(meta, { text = null, replyTo = null } = {}) {
  const payload = { type: 'file', file: meta };
  if (text !== null) payload.text = text;
  if (replyTo !== null) payload.reply_to = replyTo;
  validateFilePayload(payload);
  return payload;
}

/** Whether `value` has the shape of a MIME type `type/subtype` (no parameters) of at most 255 characters. */
export function isMimeType(value) {
  return typeof value === 'string' && value.length <= MAX_MIME_CHARS && MIME_RE.test(value);
}

/** Whether a file's (claimed) type is one shown inline: PNG, JPEG, GIF or WebP. */
export function isInlineImage(meta) {
  return INLINE_IMAGE_TYPES.has(meta?.mime);
}

// --- names ------------------------------------------------------------------------------

const trimEnd = (text) => text.replace(/[. ]+$/u, '');

/**
 * A name safe to save or show: NFC; without path separators (`/`, `\`) and control or
 * format characters (Cc, Cf: bidi overrides too); without leading dots or spaces and
 * trailing dots or spaces; at most 120 code points, keeping an extension of up to 16;
 * `"file"` if nothing is left.
 */
export function cleanFileName(name) {
  if (typeof name !== 'string') return 'file';
  let text = name.normalize('NFC').replace(/[/\\\p{Cc}\p{Cf}]/gu, '');
  text = trimEnd(text.replace(/^[. ]+/u, ''));
  const chars = Array.from(text);
  if (chars.length > MAX_CLEAN_NAME_CHARS) {
    const dot = text.lastIndexOf('.');
    const ext = dot > 0 ? Array.from(text.slice(dot + 1)) : [];
    if (ext.length > 0 && ext.length <= MAX_EXTENSION_CHARS) {
      const stem = Array.from(text.slice(0, dot)).slice(0, MAX_CLEAN_NAME_CHARS - ext.length - 1);
      text = `${trimEnd(stem.join(''))}.${ext.join('')}`;
    } else {
      text = trimEnd(chars.slice(0, MAX_CLEAN_NAME_CHARS).join(''));
    }
  }
  return text || 'file';
}
