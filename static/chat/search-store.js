/**
 * The search index at rest: encrypted buckets in IndexedDB `kv`, never plaintext.
 *
 * The key: a random AES-256-GCM key made once per device, stored as
 * `kv/search:<user_id>:<device_id>:key` = `{v: 1, enc_kid, wrapped}`: the 32 bytes
 * encrypted with RSA-OAEP-SHA-256 under this device's encryption key with the label
 * `e2ee-chat/v1/search-key|<user_id>|<device_id>` (no message key is ever wrapped with a
 * label, so neither can stand for the other). Only the device's private key unwraps it,
 * and that lives in the passphrase-locked keystore (§3): the index opens after unlock
 * like everything else, without a second passphrase derivation. In memory the key is a
 * non-extractable CryptoKey.
 *
 * A bucket: `kv/search:<user_id>:<device_id>:c<conversation>:<bucket>` =
 * `{v: 1, iv, ct}`, AES-GCM of the JSON rows (search-index.js `bucketRows`) with the
 * additional data `e2ee-chat/v1/search|<user_id>|<device_id>|<conversation>|<bucket>`
 * (a bucket cannot be moved to another place). What IndexedDB shows in the clear: which
 * conversations have indexed buckets, and their sizes.
 * @module search-store
 */

import { OAEP, b64decode, b64encode } from './protocol.js';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SearchStore {
  /**
   * @param {object} deps
   * @param {number} deps.userId
   * @param {number} deps.deviceId
   * @param {import('./protocol.js').DeviceKeys} deps.keys this device's keys (encPublic, encPrivate, encKid)
   * @param {object} deps.kv the kv store (store.js `kv`, or tests' in-memory one)
   */
  constructor({ userId, deviceId, keys, kv }) {
    Object.assign(this, { userId, deviceId, keys, kv });
    this.base = `search:${userId}:`;
    this.prefix = `search:${userId}:${deviceId}:`;
    this.key = null;
  }

  label() {
    return encoder.encode(`e2ee-chat/v1/search-key|${this.userId}|${this.deviceId}`);
  }

  bucketKey(conversation, bucket) {
    return `${this.prefix}c${conversation}:${bucket}`;
  }

  aad(conversation, bucket) {
    return encoder.encode(`e2ee-chat/v1/search|${this.userId}|${this.deviceId}|${conversation}|${bucket}`);
  }

  /**
   * Unwrap this device's index key, or make and store one (also when the stored one
   * does not open: a reset device, a damaged record; its buckets are then unreadable and
   * dropped). Records of this user's other (earlier) devices in this browser are removed.
   * Resolves whether the stored buckets can be read (false: start empty).
   */
  async open() {
    for (const [key] of await this.kv.list(this.base)) {
      if (!key.startsWith(this.prefix)) await this.kv.remove(key);
    }
    const stored = await this.kv.get(`${this.prefix}key`);
    if (stored?.v === 1 && stored.enc_kid === this.keys.encKid && typeof stored.wrapped === 'string') {
      try {
        const raw = await subtle.decrypt({ ...OAEP, label: this.label() }, this.keys.encPrivate, b64decode(stored.wrapped));
        this.key = await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
        return true;
      } catch {
        /* not ours any more: a new key below */
      }
    }
    await this.clearBuckets();
    const raw = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const wrapped = await subtle.encrypt({ ...OAEP, label: this.label() }, this.keys.encPublic, raw);
    this.key = await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    raw.fill(0);
    await this.kv.set(`${this.prefix}key`, { v: 1, enc_kid: this.keys.encKid, wrapped: b64encode(wrapped) });
    return false;
  }

  async seal(conversation, bucket, rows) {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const ct = await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: this.aad(conversation, bucket) }, this.key, encoder.encode(JSON.stringify(rows)));
    return { v: 1, iv: b64encode(iv), ct: b64encode(ct) };
  }

  /** The rows of a stored bucket record, or null when it does not open. */
  async unseal(conversation, bucket, record) {
    if (record?.v !== 1 || typeof record.iv !== 'string' || typeof record.ct !== 'string') return null;
    try {
      const plain = await subtle.decrypt({ name: 'AES-GCM', iv: b64decode(record.iv, 12), additionalData: this.aad(conversation, bucket) }, this.key, b64decode(record.ct));
      const rows = JSON.parse(decoder.decode(plain));
      return Array.isArray(rows) ? rows : null;
    } catch {
      return null;
    }
  }

  /**
   * Every stored bucket, decrypted: `[{conversation, bucket, rows}]`; a bucket that does
   * not open is removed. `each` (optional) is called per bucket as it opens.
   */
  async loadAll(each = null) {
    const out = [];
    const entries = await this.kv.list(`${this.prefix}c`);
    for (const [key, record] of entries) {
      const m = /:c(\d+):(\d+)$/.exec(key);
      if (!m) continue;
      const conversation = Number(m[1]);
      const bucket = Number(m[2]);
      const rows = await this.unseal(conversation, bucket, record);
      if (rows === null) {
        await this.kv.remove(key);
        continue;
      }
      const item = { conversation, bucket, rows };
      out.push(item);
      if (each) await each(item);
    }
    return out;
  }

  /** The stored rows of one bucket ([] when none or unreadable). */
  async read(conversation, bucket) {
    const record = await this.kv.get(this.bucketKey(conversation, bucket));
    return record ? (await this.unseal(conversation, bucket, record)) ?? [] : [];
  }

  /** Store one bucket's rows encrypted (none: the record is removed). */
  async write(conversation, bucket, rows) {
    if (!rows.length) return this.kv.remove(this.bucketKey(conversation, bucket));
    return this.kv.set(this.bucketKey(conversation, bucket), await this.seal(conversation, bucket, rows));
  }

  /** Remove every bucket of this device (the key stays). */
  async clearBuckets() {
    for (const [key] of await this.kv.list(`${this.prefix}c`)) await this.kv.remove(key);
  }
}
