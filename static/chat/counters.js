/**
 * This device's message counters (PROTOCOL §2 `n`), one per conversation, kept in
 * IndexedDB (`kv/counters:<device_id>:<conversation_id>` = the last `n` handed out).
 *
 * Every number is taken inside one readwrite transaction that reads the last one and
 * writes the next, so two tabs of this browser profile (one device, one counter) never
 * get the same `n`, and a number is stored before any envelope carrying it exists: a
 * reload can skip numbers (gaps are allowed) but never reuse one.
 * @module counters
 */

import { kv as defaultKv } from './store.js';

export class Counters {
  /** @param {number} deviceId @param {{update: Function}} [kv] the kv store (tests pass an in-memory one) */
  constructor(deviceId, kv = defaultKv) {
    this.deviceId = deviceId;
    this.kv = kv;
  }

  key(conversationId) {
    return `counters:${this.deviceId}:${conversationId}`;
  }

  /**
   * The next `n` for a new message in this conversation: one more than every number
   * this device handed out there (and more than `atLeast`, the highest the server
   * reported with `stale_counter`). The transaction is opened synchronously, so calls
   * made in one order get rising numbers in that order.
   * @returns {Promise<number>}
   */
  next(conversationId, atLeast = 0) {
    return this.kv.update(this.key(conversationId), (last) => Math.max(Number.isSafeInteger(last) ? last : 0, atLeast) + 1);
  }

  /** The last number handed out in this conversation (0 if none). @returns {Promise<number>} */
  async last(conversationId) {
    const stored = await this.kv.get(this.key(conversationId));
    return Number.isSafeInteger(stored) ? stored : 0;
  }
}
