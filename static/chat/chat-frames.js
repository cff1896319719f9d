/**
 * What ChatApp does with each server frame that router.js hands it (PROTOCOL §5):
 * `message`, `synced`, `error`, `presence`, `typing`, `read`, `conversation`,
 * `devices_changed`, and a socket that (re)opens (sync everything, resend).
 *
 * Methods of ChatApp (chat.js mixes them into its prototype): `this` is the app.
 * @module chat-frames
 */

import { ApiError } from './api.js';
import { TYPING_SHOWN } from './chat-sending.js';
import { takeDeclined } from './requests.js';

export class ChatFrames {
  onOpen() {
    this.requestSync([...this.conversations.values()], { all: true });
    // A server restored from a backup while we were away answers the sync with nothing:
    // the list's last_seq below what we showed is how the rollback shows (PROTOCOL §9).
    this.refreshConversations().catch(() => {});
    this.sender.onOpen();
  }

  async onMessage(message) {
    if (!message || !Number.isSafeInteger(message.conversation)) return;
    let conv = this.get(message.conversation);
    if (!conv) {
      await this.refreshConversations();
      conv = this.get(message.conversation);
      if (!conv) return;
    }
    if (message.seq > conv.last_seq) conv.last_seq = message.seq;
    // this tab's own message still waiting for its ack (which comes first and files it)
    if (message.sender_device === this.deviceId && (this.sender.items.has(message.client_msg_id) || this.sender.filing.has(message.client_msg_id))) return;
    await this.timeline.ingest(conv, [message], { live: true });
    this.emitSoon('messages', conv.id);
    this.emitSoon('list', null);
  }

  onSynced(frame) {
    const again = [];
    for (const [id, cursor] of Object.entries(frame.cursors ?? {})) {
      const conv = this.get(Number(id));
      this.syncing.delete(Number(id));
      if (!conv) continue;
      // The server sent everything up to `cursor`; those still decrypting file themselves.
      // Not past last_seq: a sync asked before a rollback answers with its old cursor.
      const upTo = Math.min(cursor, conv.last_seq);
      if (upTo > conv.cursor) {
        conv.cursor = upTo;
        this.readIfSeen(conv);
      }
      if (frame.has_more?.[id]) again.push(conv);
    }
    if (again.length) this.requestSync(again);
  }

  onError(frame) {
    if (frame.code === 'not_member' && frame.conversation) this.syncing.delete(frame.conversation);
  }

  onPresence(frame) {
    if (frame.online) this.online.add(frame.user);
    else this.online.delete(frame.user);
    this.emit('presence');
  }

  onTyping(frame) {
    const conv = this.get(frame.conversation);
    if (!conv || frame.user === this.me.username) return;
    conv.typing.set(frame.user, Date.now());
    this.emit('typing', conv.id);
    setTimeout(() => this.emit('typing', conv.id), TYPING_SHOWN + 50);
  }

  onRead(frame) {
    const conv = this.get(frame.conversation);
    if (!conv) return;
    if (frame.user === this.me.username) {
      conv.read_up_to = Math.max(conv.read_up_to, frame.up_to);
      if (conv.read_up_to >= conv.last_seq) conv.unread = 0;
      this.emit('list');
    } else {
      conv.readBy.set(frame.user, Math.max(conv.readBy.get(frame.user) ?? 0, frame.up_to));
      this.emitSoon('messages', conv.id);
    }
  }

  /** A `conversation` frame: a new conversation, or one whose roster changed. */
  async onConversation(data) {
    if (!data || !Number.isSafeInteger(data.id)) return;
    if (takeDeclined(this, data)) return; // a message request deleted on one of her devices
    const known = new Set();
    for (const other of this.conversations.values()) if (!other.left) for (const m of other.members) known.add(m.id);
    const { conv, isNew } = this.conversations.upsert(data);
    if (this.socket && data.members?.some((m) => m.id !== this.me.id && !known.has(m.id))) {
      // New co-members: the server reports presence on connect only (docs/browser.md).
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.socket.refresh?.(), 300);
    }
    if (isNew) conv.cursor = 0;
    this.emit('list');
    this.emit('conversation', conv.id);
    await this.checkRoster(conv, data);
    this.observeMembers(conv);
    if (isNew) this.requestSync([conv]);
  }

  async onDevicesChanged(username) {
    try {
      await this.refreshUser(username);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
    this.emit('trust');
  }
}
