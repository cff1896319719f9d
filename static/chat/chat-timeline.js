/**
 * What an open conversation shows, for ChatApp: opening it (the newest page), older
 * pages, its items (timeline.js, sender.js, uploads.js), delivery and read marks, unread
 * counts and notifications for incoming messages, and `sync` requests for gaps.
 *
 * Methods of ChatApp (chat.js mixes them into its prototype): `this` is the app.
 * @module chat-timeline
 */

import { markRead, readIfSeen } from './read-marks.js';

export class ChatTimeline {
  async open(id) {
    this.openId = id;
    const conv = this.get(id);
    this.emit('open', id);
    if (!conv) return;
    if (!conv.loaded) await this.timeline.loadNewest(conv);
    this.markRead();
    this.observeMembers(conv);
  }

  close() {
    this.openId = null;
    this.emit('open', null);
  }

  loadOlder(conv) {
    return this.timeline.loadOlder(conv);
  }

  /** What the conversation shows: `{entries, pending, uploads}` (Timeline.entries, Sender.pendingIn, Uploads). */
  items(conv) {
    return { entries: this.timeline.entries(conv), pending: this.sender.pendingIn(conv.id), uploads: this.uploads.inConversation(conv.id) };
  }

  /** The newest shown message of a conversation (for the list's preview), or null. */
  newest(conv) {
    return this.timeline.newestShown(conv);
  }

  /** "sent" or "read" for an own stored message. */
  deliveryOf(conv, item) {
    const others = this.membersOf(conv).filter((m) => m.id !== this.me.id);
    if (others.length && others.every((m) => (conv.readBy.get(m.username) ?? 0) >= item.seq)) return 'read';
    return 'sent';
  }

  onIncoming(conv, item) {
    // their message is here: no longer typing it (shown at once, not when the entry expires)
    if (conv.typing.delete(item.sender)) this.emit('typing', conv.id);
    if (item.seq <= conv.read_up_to) return;
    if (this.openId === conv.id && this.visible) {
      queueMicrotask(() => this.readIfSeen(conv));
    } else {
      if (item.seq > conv.unreadThrough) conv.unread += 1; // else the list's count has it
      conv.countedLive = Math.max(conv.countedLive, item.seq);
      this.notifier?.message(item.sender, () => this.emit('navigate', conv.id));
    }
  }

  /** Tell the server the open, seen conversation is read up to its cursor (read-marks.js). */
  markRead() {
    markRead(this);
  }

  readIfSeen(conv) {
    readIfSeen(this, conv);
  }

  requestSync(convs, { all = false } = {}) {
    const cursors = {};
    for (const conv of convs) {
      if (!all && this.syncing.has(conv.id)) continue;
      // own acknowledged messages still being filed are no gap (sender.onFiled asks again)
      if (!all && this.sender?.filingIn(conv.id)) continue;
      if (conv.left && !all) continue;
      cursors[String(conv.id)] = conv.cursor;
      this.syncing.add(conv.id);
    }
    if (Object.keys(cursors).length && !this.socket?.send({ type: 'sync', cursors })) {
      for (const id of Object.keys(cursors)) this.syncing.delete(Number(id));
    }
  }
}
