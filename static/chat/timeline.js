/**
 * What each conversation shows: its messages, fetched by page or live, opened,
 * checked against the verified roster (the `head` each names, §8) and judged for order
 * and replay (§9, ledgers.js) before they are filed by `seq`; the cursors that `sync`
 * continues from; and rollbacks: when the server's history no longer holds what was
 * shown, the conversation says so, forgets it from there and loads it again.
 *
 * A filed item's `status`: `ok`, `unsupported` (a payload type this app does not show),
 * `replayed`, `out_of_order`, `failed` (did not open, verify or fit the roster),
 * `not_for_device`, `deleted` (taken back: the server holds no envelope). Only `ok` items carry text; flagged ones never do.
 * An `ok` file message also carries `file` (its checked `file` object; `text` is the caption)
 * or `fileRefused` (the code of a `file` payload that fails the checks). Every opened item
 * keeps its `payload`; an `ok` item of a reaction, edit or delete (§10.1) is marked
 * `relation`: it is never shown as a message, never counted as new, and `entries` folds
 * it into the message it names (payloads.js `applyPayloads`).
 * @module timeline
 */

import { api } from './api.js';
import { fileFields } from './messages.js';
import { OK, OUT_OF_ORDER, REPLAYED, ROLLBACK } from './ordering.js';
import { applyPayloads, RELATION_TYPES } from './payloads.js';

const PAGE = 50;

const HEAD_FAILURE = {
  unknown_head: 'names a version of the member list the server cannot show',
  sender_not_member: 'its sender was not a member when it was sent',
  bad_head: 'names a group member list in a direct conversation',
  no_roster: 'names a member list this device has not seen',
  waiting: 'names a member list signed under an identity you have not accepted yet',
};

export class Timeline {
  /**
   * @param {object} deps
   * @param {{id: number, username: string}} deps.me
   * @param {import('./messages.js').Messenger} deps.messenger
   * @param {import('./rosters.js').RosterStore} deps.rosters
   * @param {import('./ledgers.js').LedgerStore} deps.ledgers
   * @param {(convs: object[]) => void} deps.requestSync ask the server for what follows the cursors
   * @param {(what: string, id: number) => void} deps.emit
   * @param {(conv: object, item: object) => void} deps.onIncoming a new live message of someone else
   * @param {(item: object) => void} deps.onOwnFiled one of this user's messages was filed
   * @param {(conv: object) => void} [deps.onAdvanced] the cursor was moved over filed messages
   */
  constructor({ me, messenger, rosters, ledgers, requestSync, emit, onIncoming, onOwnFiled, onAdvanced = () => {} }) {
    Object.assign(this, { me, messenger, rosters, ledgers, requestSync, emit, onIncoming, onOwnFiled, onAdvanced });
  }

  /** The timeline fields of a new conversation object. */
  static fields(data) {
    return {
      messages: new Map(),
      byId: new Map(),
      cursor: data.last_seq,
      oldestSeq: null,
      hasMore: true,
      loaded: false,
      loading: null,
      epoch: 0,
      rollback: null,
      shownCache: null,
    };
  }

  /**
   * Load the newest page (once; concurrent calls share it). A page that rolls the
   * conversation back (ingest) is loaded again, a few times at most.
   */
  loadNewest(conv) {
    if (!conv.loading) {
      conv.loading = (async () => {
        const ledger = await this.ledgers.get(conv.id);
        if (ledger.isRollback(conv.last_seq)) {
          await this.rollback(conv, conv.last_seq + 1, { reload: false });
        }
        let page;
        for (let tries = 0; tries < 3; tries += 1) {
          const epoch = conv.epoch;
          page = await api.history(conv.id, { limit: PAGE });
          await this.ingest(conv, page.messages, { live: false });
          if (conv.epoch === epoch) break;
        }
        conv.hasMore = page.has_more;
        if (page.messages.length) conv.oldestSeq = Math.min(conv.oldestSeq ?? Infinity, page.messages[0].seq);
        conv.loaded = true;
        this.emit('messages', conv.id);
      })().finally(() => {
        conv.loading = null;
      });
    }
    return conv.loading;
  }

  /** The page of history just above the oldest shown; false when there is none. */
  async loadOlder(conv) {
    if (!conv.loaded || !conv.hasMore || conv.loading || conv.oldestSeq === null) return false;
    conv.loading = (async () => {
      const page = await api.history(conv.id, { beforeSeq: conv.oldestSeq, limit: PAGE });
      await this.ingest(conv, page.messages, { live: false });
      conv.hasMore = page.has_more;
      if (page.messages.length) conv.oldestSeq = Math.min(conv.oldestSeq, page.messages[0].seq);
      this.emit('older', conv.id);
    })().finally(() => {
      conv.loading = null;
    });
    await conv.loading;
    return true;
  }

  /**
   * Open, check and judge messages (in parallel), then file them; live ones also count
   * as new. A message the ledger calls a rollback reloads the conversation instead.
   */
  async ingest(conv, messages, { live }) {
    const epoch = conv.epoch;
    const fresh = [];
    for (const m of messages) {
      if (!isMessage(m, conv.id)) continue;
      // an id shown before is a duplicate only if it is the same message: a server restored
      // from a backup hands out the lost messages' ids (and seqs) again (PROTOCOL §9)
      const known = conv.byId.get(m.id);
      if (known && !sameMessage(known, m)) return this.rollback(conv, Math.min(known.seq, m.seq));
      if (known) continue;
      const holder = conv.messages.get(m.seq);
      if (holder && holder.id !== m.id) return this.rollback(conv, m.seq);
      if (!holder) fresh.push(m);
    }
    if (!fresh.length) return this.advanceCursor(conv);
    const opened = await Promise.all(fresh.map((m) => this.openOne(conv, m)));
    if (conv.epoch !== epoch) return undefined;
    const ledger = await this.ledgers.get(conv.id);
    let rollbackAt = null;
    const order = opened.map((_, i) => i).sort((a, b) => fresh[a].seq - fresh[b].seq);
    for (const i of order) {
      const item = opened[i];
      if (!item.judge) continue;
      const prior = ledger.entries.get(item.id);
      const verdict = ledger.judge(item.judge);
      if (verdict === ROLLBACK) {
        rollbackAt = Math.min(rollbackAt ?? Infinity, item.seq, prior?.seq ?? Infinity);
      } else if (verdict !== OK) {
        flag(item, verdict);
      }
    }
    const changed = new Set(ledger.takeChanged());
    await this.ledgers.save(conv.id);
    if (conv.epoch !== epoch) return undefined;
    if (rollbackAt !== null) return this.rollback(conv, rollbackAt);
    for (const id of changed) {
      const shown = conv.byId.get(id);
      if (shown) flag(shown, REPLAYED);
      conv.shownCache = null;
    }
    for (const i of order) {
      const item = opened[i];
      if (changed.has(item.id)) flag(item, REPLAYED);
      if (conv.messages.has(item.seq)) continue;
      this.file(conv, item);
      if (live && !item.own && !item.relation) this.onIncoming(conv, item);
    }
    return this.advanceCursor(conv);
  }

  /** Open one message and check its head: a shown item, with `judge` set when §9 applies. */
  async openOne(conv, message) {
    const result = message.deleted === true && message.envelope === null
      ? { status: 'deleted', reason: 'taken back by its sender' }
      : await this.messenger.open(message);
    const item = {
      id: message.id,
      seq: message.seq,
      sender: message.sender,
      sender_id: message.sender_id,
      sender_device: message.sender_device,
      client_msg_id: message.client_msg_id,
      created: message.created,
      own: message.sender_id === this.me.id,
      status: result.status,
      text: result.status === 'ok' ? result.text : undefined,
      file: result.status === 'ok' ? result.file : undefined,
      fileRefused: result.status === 'ok' ? result.fileRefused : undefined,
      payload: result.payload ?? null,
      relation: result.status === 'ok' && isRelation(result.payload),
      reason: result.reason,
      v: result.v,
      note: result.note ?? null,
      judge: null,
    };
    if (!result.v) return item; // did not open or verify: not judged
    if (result.v === 1) {
      item.legacy = true;
    } else {
      const check = await this.rosters.checkHead(conv, message.sender_id, result.head);
      if (check === 'before_roster') item.beforeRoster = true;
      else if (check !== 'ok') {
        item.status = 'failed';
        item.text = undefined;
        item.file = undefined;
        item.payload = null;
        item.relation = false;
        item.reason = `this message ${HEAD_FAILURE[check] ?? 'does not fit the member list'}`;
        return item;
      }
    }
    item.judge = { id: message.id, seq: message.seq, senderId: message.sender_id, clientMsgId: message.client_msg_id, sigKid: result.sigKid, v: result.v, n: result.n };
    return item;
  }

  /**
   * File one of this device's messages from its ack (the text is the one it sealed),
   * judged like every other message.
   */
  async fileOwn(conv, { id, seq, created, client_msg_id: clientMsgId, n, text, payload, sigKid }) {
    const known = conv.byId.get(id);
    if (known && sameMessage(known, { seq, sender_id: this.me.id, client_msg_id: clientMsgId })) return;
    const holder = conv.messages.get(seq);
    if (known || holder) {
      // the server gave a shown id or seq to this message (a restore, PROTOCOL §9): forget
      // from there and reload; if the reload did not file it, it is filed below
      await this.rollback(conv, Math.min(seq, known?.seq ?? seq));
      if (conv.byId.has(id) || conv.messages.has(seq)) return;
    }
    const epoch = conv.epoch;
    const ledger = await this.ledgers.get(conv.id);
    const item = {
      id, seq, created, client_msg_id: clientMsgId, sender: this.me.username, sender_id: this.me.id,
      own: true, status: 'ok', text, v: 2, note: null, payload: payload ?? null, relation: isRelation(payload),
      ...(payload?.type === 'file' ? fileFields(payload) : {}),
    };
    const verdict = ledger.judge({ id, seq, senderId: this.me.id, clientMsgId, sigKid, v: 2, n });
    await this.ledgers.save(conv.id);
    if (conv.epoch !== epoch) return;
    if (verdict === ROLLBACK) {
      await this.rollback(conv, seq);
      return;
    }
    if (verdict !== OK) flag(item, verdict);
    if (!conv.messages.has(seq)) this.file(conv, item);
    this.advanceCursor(conv);
  }

  file(conv, item) {
    conv.shownCache = null;
    conv.messages.set(item.seq, item);
    conv.byId.set(item.id, item);
    if (item.own) this.onOwnFiled(item);
    if (item.seq > conv.last_seq) conv.last_seq = item.seq;
    if (!item.relation && (!conv.last_activity || item.created > conv.last_activity)) conv.last_activity = item.created;
  }

  /** Move the cursor over filed messages; ask for what is missing below `last_seq`. */
  advanceCursor(conv) {
    while (conv.messages.has(conv.cursor + 1)) conv.cursor += 1;
    this.onAdvanced(conv);
    if (conv.last_seq > conv.cursor) this.requestSync([conv]);
  }

  /**
   * The server no longer holds what this conversation showed from `seq` on (a message
   * moved, or `last_seq` fell below a shown seq): say so, forget the judgements from
   * there (`forgetFrom`), drop those messages and load them again from the server.
   */
  async rollback(conv, seq, { reload = true } = {}) {
    conv.epoch += 1;
    conv.shownCache = null;
    conv.rollback = { at: new Date().toISOString(), seq };
    await this.ledgers.forgetFrom(conv.id, seq);
    for (const [s, item] of [...conv.messages]) {
      if (s >= seq) {
        conv.messages.delete(s);
        conv.byId.delete(item.id);
      }
    }
    conv.shownCache = null;
    conv.cursor = Math.min(conv.cursor, seq - 1);
    // what the server holds from `seq` on is known again once loaded (a sync answered
    // after this must not move the cursor over what was forgotten: onSynced)
    conv.last_seq = Math.min(conv.last_seq, seq - 1);
    this.emit('rollback', conv.id);
    this.emit('messages', conv.id);
    if (!reload) return;
    if (conv.loaded) {
      conv.loaded = false;
      conv.hasMore = true;
      conv.oldestSeq = null;
      await conv.loading?.catch(() => {});
      await this.loadNewest(conv);
    } else if (!conv.loading) {
      // not open: its newest page, so that what it shows (and its preview) is the server's
      await this.loadNewest(conv);
    } // else a load under way loads again (loadNewest)
  }

  /**
   * A message the server took back (a `deleted` frame, PROTOCOL §5): shown as deleted
   * from now on, its text and file forgotten. Returns whether it was shown here.
   */
  markDeleted(conv, { id, seq }) {
    const item = conv.byId.get(id);
    if (!item || item.seq !== seq || item.status === 'deleted') return false;
    Object.assign(item, { status: 'deleted', reason: 'taken back by its sender', text: undefined, file: undefined, fileRefused: undefined, payload: null, relation: false });
    conv.shownCache = null;
    return true;
  }

  /**
   * The filed messages folded by applyPayloads (payloads.js): `{item, view}` for each
   * message to show, by seq, where `view` is the reducer's entry (`reply_to`, `edited`,
   * `deleted`, `reactions`); reactions, edits, deletes and unknown types are left out.
   */
  shown(conv) {
    if (conv.shownCache) return conv.shownCache;
    const stored = [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
    const views = applyPayloads(stored.map((item) => ({
      seq: item.seq,
      sender_id: item.sender_id,
      client_msg_id: item.client_msg_id,
      payload: item.status === 'ok' || item.status === 'unsupported' ? item.payload ?? null : null,
      deleted: item.status === 'deleted',
    })));
    conv.shownCache = views.map((view) => ({ item: conv.messages.get(view.seq), view }));
    return conv.shownCache;
  }

  /** The newest message shown (for the list's preview) with its edited text, or null. */
  newestShown(conv) {
    const last = this.shown(conv).at(-1);
    if (!last) return null;
    const { item, view } = last;
    if (view.deleted) return { ...item, status: 'deleted', text: undefined, file: undefined };
    return view.edited === null ? item : { ...item, text: view.edited };
  }

  /**
   * What to show, oldest first: the shown messages (`shown`) by seq, with the verified
   * roster events placed among them by time (events before the oldest loaded message only
   * once the start of the conversation is loaded).
   * @returns {Array<{kind: 'message', item: object, view: object} | {kind: 'event', event: object}>}
   */
  entries(conv) {
    const shown = this.shown(conv);
    const events = this.rosters.events(conv.id);
    const out = [];
    let e = 0;
    const oldest = shown[0]?.item.created ?? null;
    if (conv.hasMore && oldest) while (e < events.length && (events[e].created ?? '') < oldest) e += 1;
    for (const { item, view } of shown) {
      while (e < events.length && (events[e].created ?? '') <= item.created) out.push({ kind: 'event', event: events[e++] });
      out.push({ kind: 'message', item, view });
    }
    while (e < events.length) out.push({ kind: 'event', event: events[e++] });
    return out;
  }
}

/** Whether a shown item and a server message are the same message (not just the same id). */
function sameMessage(item, m) {
  return item.seq === m.seq && item.sender_id === m.sender_id && item.client_msg_id === m.client_msg_id;
}

function flag(item, verdict) {
  item.status = verdict === OUT_OF_ORDER ? 'out_of_order' : 'replayed';
  item.text = undefined;
  item.file = undefined;
  item.payload = null;
  item.relation = false;
}

/** Whether a payload is a reaction, edit or delete (folded into its target, never shown). */
export function isRelation(payload) {
  return RELATION_TYPES.includes(payload?.type);
}

function isMessage(m, conversationId) {
  return m && typeof m === 'object' && m.conversation === conversationId && Number.isSafeInteger(m.seq) && m.seq >= 1
    && Number.isSafeInteger(m.id) && Number.isSafeInteger(m.sender_id) && typeof m.client_msg_id === 'string';
}
