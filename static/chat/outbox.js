/**
 * Sealed but unacknowledged messages of this device, as ciphertext envelopes in
 * IndexedDB (`kv/outbox:<device_id>:<client_msg_id>`, one record each, so two tabs of
 * one profile never overwrite each other's), so a reload or a dropped connection loses
 * nothing. Resending keeps the client_msg_id and the envelope (with its `n`), which the
 * server treats idempotently (PROTOCOL §6), so nothing doubles.
 * @module outbox
 */

import { kv as defaultKv } from './store.js';

/**
 * @typedef {object} OutboxItem
 * @property {number} conversation
 * @property {string} client_msg_id
 * @property {number|null} n the envelope's counter (null: a v1 envelope to seal again)
 * @property {object} envelope the sealed v2 envelope (ciphertext only)
 * @property {string} queued ISO time it was first queued
 * @property {string[]} [blobs] blob ids the `send` frame names (a file message)
 */

export class Outbox {
  /** @param {number} deviceId @param {object} [kv] the kv store (tests pass an in-memory one) */
  constructor(deviceId, kv = defaultKv) {
    this.legacyKey = `outbox:${deviceId}`;
    this.prefix = `outbox:${deviceId}:`;
    this.kv = kv;
    /** @type {Map<string, OutboxItem>} */
    this.items = new Map();
  }

  /**
   * Read every stored item of this device (also those another tab queued). Items of the
   * v1 outbox (one list, v1 envelopes the server now refuses) come back with `n` null:
   * the sender opens and seals them again as v2.
   */
  async load() {
    for (const [, item] of await this.kv.list(this.prefix)) {
      if (item && typeof item.client_msg_id === 'string' && item.envelope) this.items.set(item.client_msg_id, item);
    }
    const legacy = await this.kv.get(this.legacyKey);
    if (Array.isArray(legacy)) {
      for (const item of legacy) {
        if (item?.envelope && !this.items.has(item.client_msg_id)) await this.put({ ...item, n: null });
      }
      await this.kv.remove(this.legacyKey);
    }
    return this;
  }

  /** Store (or replace, after sealing again) one item. */
  async put(item) {
    const stored = {
      conversation: item.conversation,
      client_msg_id: item.client_msg_id,
      n: item.n,
      envelope: item.envelope,
      queued: item.queued ?? new Date().toISOString(),
    };
    if (item.blobs?.length) stored.blobs = [...item.blobs];
    this.items.set(stored.client_msg_id, stored);
    await this.kv.set(this.prefix + stored.client_msg_id, stored);
    return stored;
  }

  get(clientMsgId) {
    return this.items.get(clientMsgId);
  }

  has(clientMsgId) {
    return this.items.has(clientMsgId);
  }

  async remove(clientMsgId) {
    this.items.delete(clientMsgId);
    await this.kv.remove(this.prefix + clientMsgId);
  }

  /** Items of one conversation (or all), each conversation's in `n` order. */
  list(conversationId = null) {
    return [...this.items.values()]
      .filter((item) => conversationId === null || item.conversation === conversationId)
      .sort((a, b) => a.conversation - b.conversation || (a.n ?? 0) - (b.n ?? 0) || (a.queued < b.queued ? -1 : 1));
  }
}
