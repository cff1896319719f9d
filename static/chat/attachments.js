/**
 * Encrypted attachments (PROTOCOL §10.2), browser twin of chatclient/attachments.py.
 *
 * STAND-IN written by lane `browser` against the plan's API until lane `proto`'s module
 * lands (its version replaces this file whole on merge).
 * @module attachments
 */

import { b64decode, b64encode, hex } from './protocol.js';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

export const FILE_CHUNK = 65536;
export const FILE_TAG = 16;
export const MAX_FILE_BYTES = 100 * 2 ** 20;
export const THUMB_MAX_BYTES = 16384;
export const INLINE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const BLOB_ID_RE = /^[A-Za-z0-9_-]{22}$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const MIME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A file that failed a §10.2 check: `code` one of bad_length, bad_chunk, bad_last, bad_padding, bad_hash, bad_meta. */
export class FileRefused extends Error {
  constructor(code, detail = '') {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'FileRefused';
    this.code = code;
    this.detail = detail;
  }
}

/** max(256, Padmé(L)) in exact integer arithmetic. */
export function padme(length) {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length');
  if (length <= 256) return 256;
  const L = BigInt(length);
  const E = BigInt(L.toString(2).length - 1);
  const S = BigInt(E.toString(2).length);
  const m = (1n << (E - S)) - 1n;
  return Number((L + m) & ~m);
}

export function chunkCount(padded) {
  return Math.ceil(padded / FILE_CHUNK);
}

export function blobSize(size) {
  const P = padme(size);
  return P + FILE_TAG * chunkCount(P);
}

export function fileChunkAad(i, last) {
  return encoder.encode(`e2ee-chat/v2/file|${i}|${last ? 1 : 0}`);
}

export function fileChunkNonce(prefix, i) {
  const nonce = new Uint8Array(12);
  nonce.set(prefix, 0);
  new DataView(nonce.buffer).setUint32(8, i, false);
  return nonce;
}

function concat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Streaming encryption of a file of `size` bytes (fresh key and prefix unless given). */
export class FileEncryptor {
  constructor(size, key = null, prefix = null) {
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_BYTES) throw new FileRefused('bad_meta', 'size');
    this.size = size;
    this.padded = padme(size);
    this.count = chunkCount(this.padded);
    this.key = key ?? crypto.getRandomValues(new Uint8Array(32));
    this.prefix = prefix ?? crypto.getRandomValues(new Uint8Array(8));
    this.fed = 0;
    this.index = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.cryptoKey = null;
  }

  async encryptChunks(chunks) {
    this.cryptoKey ??= await subtle.importKey('raw', this.key, 'AES-GCM', false, ['encrypt']);
    const start = this.index;
    this.index += chunks.length;
    const out = await Promise.all(chunks.map((chunk, k) => {
      const i = start + k;
      return subtle.encrypt({ name: 'AES-GCM', iv: fileChunkNonce(this.prefix, i), additionalData: fileChunkAad(i, i === this.count - 1) }, this.cryptoKey, chunk);
    }));
    return concat(out.map((b) => new Uint8Array(b)));
  }

  /** Ciphertext of the whole chunks ready so far (the chunk that may be last waits for finish). */
  async update(bytes) {
    const data = new Uint8Array(bytes);
    this.fed += data.length;
    if (this.fed > this.size) throw new RangeError('more bytes than the size');
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes < FILE_CHUNK) return new Uint8Array(0);
    const all = concat(this.pending);
    const chunks = [];
    let at = 0;
    while (all.length - at >= FILE_CHUNK && this.index + chunks.length < this.count - 1) {
      chunks.push(all.subarray(at, at + FILE_CHUNK));
      at += FILE_CHUNK;
    }
    this.pending = [all.slice(at)];
    this.pendingBytes = all.length - at;
    return chunks.length ? this.encryptChunks(chunks) : new Uint8Array(0);
  }

  /** Pads with zeros to P and encrypts the rest (the last chunk marked last). */
  async finish() {
    if (this.fed !== this.size) throw new RangeError('fewer bytes than the size');
    this.pending.push(new Uint8Array(this.padded - this.size));
    const data = concat(this.pending);
    this.pending = [];
    const chunks = [];
    for (let at = 0; at < data.length; at += FILE_CHUNK) chunks.push(data.subarray(at, at + FILE_CHUNK));
    return this.encryptChunks(chunks);
  }
}

/** Streaming decryption and checks of a blob for a validated `file` object. */
export class FileDecryptor {
  constructor(meta) {
    validateFileMeta(meta);
    this.meta = meta;
    this.size = meta.size;
    this.padded = padme(meta.size);
    this.count = chunkCount(this.padded);
    this.expected = blobSize(meta.size);
    this.key = b64decode(meta.key, 32);
    this.prefix = b64decode(meta.prefix, 8);
    this.received = 0;
    this.index = 0;
    this.pending = [];
    this.cryptoKey = null;
    this.produced = 0;
  }

  async decryptChunk(i, chunk) {
    const last = i === this.count - 1;
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: fileChunkNonce(this.prefix, i), additionalData: fileChunkAad(i, last) }, this.cryptoKey, chunk));
    } catch {
      try {
        await subtle.decrypt({ name: 'AES-GCM', iv: fileChunkNonce(this.prefix, i), additionalData: fileChunkAad(i, !last) }, this.cryptoKey, chunk);
      } catch {
        throw new FileRefused('bad_chunk', `chunk ${i} did not authenticate`);
      }
      throw new FileRefused('bad_last', `chunk ${i} has the wrong last flag`);
    }
  }

  unpad(i, plain) {
    const start = i * FILE_CHUNK;
    const keep = Math.max(0, Math.min(plain.length, this.size - start));
    for (let k = keep; k < plain.length; k += 1) if (plain[k] !== 0) throw new FileRefused('bad_padding', 'padding is not zeros');
    return plain.subarray(0, keep);
  }

  async run(all) {
    this.cryptoKey ??= await subtle.importKey('raw', this.key, 'AES-GCM', false, ['decrypt']);
    const data = concat(this.pending);
    const step = FILE_CHUNK + FILE_TAG;
    const chunks = [];
    let at = 0;
    while (data.length - at >= step || (all && data.length - at > 0)) {
      chunks.push(data.subarray(at, at + step));
      at += step;
    }
    this.pending = [data.subarray(at)];
    const start = this.index;
    this.index += chunks.length;
    const plains = await Promise.all(chunks.map((c, k) => this.decryptChunk(start + k, c)));
    const out = concat(plains.map((p, k) => this.unpad(start + k, p)));
    this.produced += out.length;
    return out;
  }

  /** Plaintext (unpadded) of the chunks completed so far. */
  async update(bytes) {
    const data = new Uint8Array(bytes);
    this.received += data.length;
    if (this.received > this.expected) throw new FileRefused('bad_length', 'longer than the size says');
    this.pending.push(data);
    return this.run(false);
  }

  /** Checks the total length and decrypts the rest; sha256 is checked by the caller (fileSha256). */
  async finish() {
    if (this.received !== this.expected) throw new FileRefused('bad_length', `${this.received} bytes, expected ${this.expected}`);
    const out = await this.run(true);
    if (this.produced !== this.size) throw new FileRefused('bad_length', 'size');
    return out;
  }
}

/** Lowercase hex SHA-256 of a Blob, ArrayBuffer or bytes. */
export async function fileSha256(data) {
  const buffer = data instanceof Blob ? await data.arrayBuffer() : data;
  return hex(await subtle.digest('SHA-256', buffer));
}

function codePoints(s) {
  return Array.from(s).length;
}

function validateFileMeta(f) {
  const bad = (what) => {
    throw new FileRefused('bad_meta', what);
  };
  if (!f || typeof f !== 'object' || Array.isArray(f)) bad('file');
  if (typeof f.blob !== 'string' || !BLOB_ID_RE.test(f.blob)) bad('blob');
  try {
    b64decode(f.key, 32);
    b64decode(f.prefix, 8);
  } catch {
    bad('key or prefix');
  }
  if (!Number.isSafeInteger(f.size) || f.size < 0 || f.size > MAX_FILE_BYTES) bad('size');
  if (typeof f.sha256 !== 'string' || !SHA_RE.test(f.sha256)) bad('sha256');
  if (typeof f.name !== 'string' || codePoints(f.name) < 1 || codePoints(f.name) > 255) bad('name');
  if (typeof f.mime !== 'string' || f.mime.length > 255 || !MIME_RE.test(f.mime)) bad('mime');
  for (const k of ['width', 'height']) if (f[k] !== undefined && (!Number.isSafeInteger(f[k]) || f[k] < 1 || f[k] > 65535)) bad(k);
  if (f.thumb !== undefined) {
    try {
      if (b64decode(f.thumb).length > THUMB_MAX_BYTES) bad('thumb');
    } catch (error) {
      if (error instanceof FileRefused) throw error;
      bad('thumb');
    }
  }
}

/** Check a `file` payload (§10.1, §10.2); throws FileRefused('bad_meta'). Returns it. */
export function validateFilePayload(obj) {
  if (!obj || obj.type !== 'file') throw new FileRefused('bad_meta', 'type');
  validateFileMeta(obj.file);
  if (obj.text !== undefined && (typeof obj.text !== 'string' || codePoints(obj.text) > 16000)) throw new FileRefused('bad_meta', 'text');
  return obj;
}

/** The `file` payload of a meta object (caption and reply optional). */
export function filePayload(meta, text = null, replyTo = null) {
  const payload = { type: 'file', file: meta };
  if (text) payload.text = text;
  if (replyTo) payload.reply_to = replyTo;
  return payload;
}

/** The `file` object for an encryptor's key and prefix. */
export function fileMeta(encryptor, { blob, sha256, name, mime, width, height, thumb }) {
  const meta = { blob, key: b64encode(encryptor.key), prefix: b64encode(encryptor.prefix), size: encryptor.size, sha256, name, mime };
  if (width) meta.width = width;
  if (height) meta.height = height;
  if (thumb) meta.thumb = b64encode(thumb);
  return meta;
}

/** A name safe to save under: NFC, no separators or control/format characters, no leading dots, ≤ 120 code points. */
export function cleanFileName(name) {
  let s = String(name ?? '').normalize('NFC').replace(/[/\\]/g, '').replace(/[\p{Cc}\p{Cf}]/gu, '');
  s = s.replace(/^\.+/, '').replace(/[. ]+$/, '');
  const chars = Array.from(s);
  if (chars.length > 120) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 ? Array.from(s.slice(dot)) : [];
    s = ext.length && ext.length < 20 ? chars.slice(0, 120 - ext.length).join('') + ext.join('') : chars.slice(0, 120).join('');
  }
  return s || 'file';
}
