/**
 * Replies, reactions, edits and deletes (PROTOCOL §10.1) for the chat, without DOM: what
 * the composer and the message menu call. Each is a payload of payloads.js queued like any
 * message (sender.js: sealed, counted, sent in order, kept in the outbox); what they do to
 * the screen comes from timeline.js folding them (applyPayloads) once stored, so every
 * device shows the same. A `deleted` frame (the server took a message back) marks the
 * message deleted at once.
 * @module rich
 */

import { api } from './api.js';
import { deletePayload, editPayload, messageRef, reactionPayload, textPayload } from './payloads.js';
import { MAX_TEXT_CHARS } from './protocol.js';
import { isRelation } from './timeline.js';

/** Unread messages looked at by recountUnread, per conversation. */
const MAX_RECOUNT = 50;

export class RichMessages {
  /** @param {import('./chat.js').ChatApp} app */
  constructor(app) {
    this.app = app;
    app.addEventListener('frame', (event) => {
      if (event.detail?.type === 'deleted') this.onDeleted(event.detail);
    });
  }

  /** A `deleted` frame: the message shows as deleted (the server holds no envelope now). */
  onDeleted(frame) {
    const conv = Number.isSafeInteger(frame.conversation) ? this.app.get(frame.conversation) : null;
    if (!conv || !Number.isSafeInteger(frame.id) || !Number.isSafeInteger(frame.seq)) return;
    if (this.app.timeline.markDeleted(conv, frame)) {
      this.app.emitSoon('messages', conv.id);
      this.app.emitSoon('list', null);
    }
  }

  /**
   * The server counts every message of others after the read mark as unread: reactions,
   * edits and deletes too (it cannot tell them apart). For a conversation it says has
   * unread messages, open the newest ones after the read mark (at most 50) and take the
   * relations among them off the count. Nothing is filed; failures leave the count. Only
   * the latest recount of a conversation applies (each list refresh starts one, and two
   * applied would take the same relations off twice).
   */
  async recountUnread(conv) {
    if (!conv.unread || conv.left) return;
    const upTo = conv.read_up_to;
    const recount = (this.recounts ??= new Map()).set(conv.id, (this.recounts.get(conv.id) ?? 0) + 1).get(conv.id);
    let page;
    try {
      page = await api.history(conv.id, { limit: Math.min(MAX_RECOUNT, Math.max(conv.unread, conv.last_seq - upTo)) });
    } catch {
      return;
    }
    const theirs = (page?.messages ?? []).filter((m) => m && m.seq > upTo && m.sender_id !== this.app.me.id && m.envelope);
    const opened = await Promise.all(theirs.map((m) => this.app.messenger.open(m)));
    const relations = opened.filter((r) => r.status === 'ok' && isRelation(r.payload)).length;
    if (!relations || conv.read_up_to !== upTo || this.recounts.get(conv.id) !== recount) return;
    conv.unread = Math.max(0, conv.unread - relations);
    this.app.emitSoon('list', null);
  }

  /** The `{sender_id, client_msg_id}` reference to a stored message item. */
  refOf(item) {
    return messageRef(item.sender_id, item.client_msg_id);
  }

  /**
   * Queue a text, quoting `replyTo` (a stored message item) when given. Throws a plain
   * Error for an empty text or one over 16,000 characters.
   */
  sendText(conv, text, replyTo = null) {
    checkText(text);
    conv.last_activity = new Date().toISOString();
    this.app.emitSoon('list', null);
    return this.app.sender.sendPayload(conv, textPayload(text, replyTo ? this.refOf(replyTo) : null));
  }

  /** Add (or with `remove`, take back) this user's reaction `emoji` to a message. */
  react(conv, item, emoji, remove = false) {
    return this.app.sender.sendPayload(conv, reactionPayload(this.refOf(item), emoji, remove));
  }

  /** Whether this user's reaction `emoji` stands on a shown message (`view` from timeline.entries). */
  reacted(view, emoji) {
    return (view.reactions[emoji] ?? []).includes(this.app.me.id);
  }

  /** Add the reaction, or take it back when it is already this user's. */
  toggleReaction(conv, item, view, emoji) {
    return this.react(conv, item, emoji, this.reacted(view, emoji));
  }

  /** Whether this user may edit or delete a shown message: her own, stored, not deleted. */
  mayChange(item, view) {
    return item.own && item.status === 'ok' && !view.deleted && view.type !== null;
  }

  /** Send the new text of one of this user's messages. Throws a plain Error otherwise. */
  edit(conv, item, text) {
    if (!item.own) throw new Error('Only your own messages can be edited.');
    checkText(text);
    return this.app.sender.sendPayload(conv, editPayload(this.refOf(item), text));
  }

  /**
   * Take one of this user's messages back for everyone: the `delete` payload (every
   * client hides the message by it, whatever the server does), and once that is stored,
   * `DELETE …/messages/<id>/` (the server forgets the ciphertext and tells every member).
   * Rejects with the reason when either fails.
   */
  async deleteForEveryone(conv, item) {
    if (!item.own) throw new Error('Only your own messages can be deleted.');
    const pending = this.app.sender.sendPayload(conv, deletePayload(this.refOf(item)));
    await this.stored(pending);
    await api.takeBack(conv.id, item.id);
  }

  /** Resolves when a queued message is stored (acknowledged); rejects when it fails or is blocked. */
  stored(pending) {
    const sender = this.app.sender;
    return new Promise((resolve, reject) => {
      const check = () => {
        const item = sender.items.get(pending.client_msg_id);
        if (!item) {
          sender.removeEventListener('change', check);
          resolve();
        } else if (item.state === 'failed' || item.state === 'blocked') {
          sender.removeEventListener('change', check);
          reject(new Error(item.error ?? 'Not sent.'));
        }
      };
      sender.addEventListener('change', check);
      check();
    });
  }
}

/** The composer's rule for a text to send: not blank, at most 16,000 characters (code points). */
export function checkText(text) {
  if (typeof text !== 'string' || !text.trim()) throw new Error('A message needs some text.');
  const length = Array.from(text).length;
  if (length > MAX_TEXT_CHARS) throw new Error(`A message is at most ${MAX_TEXT_CHARS.toLocaleString('en')} characters (this one has ${length.toLocaleString('en')}).`);
}
