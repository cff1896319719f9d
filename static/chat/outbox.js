/**
 * Sent-but-unacknowledged messages of this device, as ciphertext envelopes kept in
 * IndexedDB so a reload or a dropped connection loses nothing. Resending keeps the
 * client_msg_id, which the server treats idempotently (PROTOCOL §6), so nothing doubles.
 * @module outbox
 */

import { getItem, setItem } from './store.js';

export class Outbox {
  constructor(deviceId) {
    this.key = `outbox:${deviceId}`;
    /** client_msg_id -> {conversation, client_msg_id, envelope, queued, sentAt, attempts} */
    this.items = new Map();
  }

  async load() {
    for (const item of (await getItem(this.key)) ?? []) this.items.set(item.client_msg_id, { ...item, sentAt: 0 });
    return this;
  }

  save() {
    return setItem(this.key, [...this.items.values()].map(({ conversation, client_msg_id, envelope, queued, attempts }) => ({ conversation, client_msg_id, envelope, queued, attempts })));
  }

  async put(item) {
    this.items.set(item.client_msg_id, { queued: new Date().toISOString(), sentAt: 0, attempts: 0, ...item });
    await this.save();
  }

  get(clientMsgId) {
    return this.items.get(clientMsgId);
  }

  async remove(clientMsgId) {
    if (this.items.delete(clientMsgId)) await this.save();
  }

  /** Items in the order they were queued. */
  list() {
    return [...this.items.values()].sort((a, b) => (a.queued < b.queued ? -1 : 1));
  }
}
