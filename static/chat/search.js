/**
 * Local search across every conversation this device can read. The index
 * (search-index.js) lives in memory and, encrypted, in this browser (search-store.js);
 * nothing of it is ever sent to the server, and a query never leaves the page.
 *
 * What is indexed: every message the timeline shows as readable (`ok`): its text, or
 * a file's name and caption, with its sender and time. A message that stops being
 * readable (flagged as replayed or out of order, deleted, rolled back) leaves the index.
 * The index grows as conversations are opened (`onTimeline`, called by ChatApp whenever
 * a conversation's messages change) and is rebuilt on demand (`rebuild`: every
 * conversation's history through the history API, opened and checked as the timeline
 * does, without filing it).
 *
 * Events: `change` (the index was loaded, changed, or a rebuild progressed).
 * @module search
 */

import { api, ApiError } from './api.js';
import { applyPayloads } from './payloads.js';
import { SearchIndex } from './search-index.js';
import { SearchStore } from './search-store.js';

const SAVE_AFTER = 800;
const REBUILD_PAGE = 100;
const OPEN_AT_ONCE = 25;

/**
 * What a shown message contributes to the index: its text as shown (the latest edit's,
 * `view` being the reducer's entry, payloads.js `applyPayloads`), or a file's name and
 * caption; '' for nothing (not readable, deleted, a reaction, edit or delete itself).
 */
export function indexText(item, view = null) {
  if (!item || item.status !== 'ok' || view?.deleted) return '';
  const edited = typeof view?.edited === 'string' ? view.edited : null;
  const text = edited ?? (typeof item.text === 'string' ? item.text : '');
  const name = item.file && typeof item.file.name === 'string' ? item.file.name : '';
  return name ? (text ? `${name} — ${text}` : name) : text;
}

/** A conversation's opened items folded as the timeline folds them: `[{item, view}]` by seq. */
export function foldItems(items) {
  const bySeq = new Map(items.map((item) => [item.seq, item]));
  const views = applyPayloads([...items].sort((a, b) => a.seq - b.seq).map((item) => ({
    seq: item.seq,
    sender_id: item.sender_id,
    client_msg_id: item.client_msg_id,
    payload: item.status === 'ok' || item.status === 'unsupported' ? item.payload ?? null : null,
    deleted: item.status === 'deleted',
  })));
  return views.map((view) => ({ item: bySeq.get(view.seq), view }));
}

export class LocalSearch extends EventTarget {
  /**
   * @param {object} deps
   * @param {import('./chat.js').ChatApp} deps.app
   * @param {object} deps.kv the kv store
   * @param {object|null} [deps.locks] Web Locks (null in node tests)
   */
  constructor({ app, kv, locks = globalThis.navigator?.locks ?? null }) {
    super();
    this.app = app;
    this.locks = locks;
    this.index = new SearchIndex();
    this.store = new SearchStore({ userId: app.me.id, deviceId: app.deviceId, keys: app.keys, kv });
    this.ready = false;
    this.seen = new WeakMap();
    this.gone = new Set();
    this.saveTimer = null;
    this.saving = Promise.resolve();
    /** @type {{done: number, total: number, running: boolean, stopped: boolean, failed: string|null}|null} */
    this.rebuildState = null;
    this.controller = null;
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }

  /**
   * Open the key and decrypt the stored buckets into memory (yielding between buckets,
   * so the page stays responsive), then take in what is already shown.
   */
  async start() {
    const readable = await this.store.open();
    if (readable) {
      await this.store.loadAll(async ({ conversation, rows }) => {
        this.index.addRows(conversation, rows);
        await new Promise((resolve) => setTimeout(resolve, 0));
      });
    }
    this.ready = true;
    for (const conv of this.app.conversations.values()) this.scan(conv);
    if (typeof window !== 'undefined') {
      window.addEventListener('pagehide', () => this.flush());
    }
    this.changed();
    return this;
  }

  /** ChatApp's timeline event (`messages`, `older`, `rollback`) for conversation `id`. */
  onTimeline(what, id) {
    const conv = this.app.get(id);
    if (!conv || !this.ready) return;
    if (what === 'rollback' && conv.rollback) this.drop(this.index.removeFrom(conv.id, conv.rollback.seq));
    this.scan(conv);
  }

  /** Index what the conversation shows now; drop what it no longer shows as readable. */
  scan(conv) {
    let any = false;
    const shown = this.app.timeline.shown ? this.app.timeline.shown(conv) : foldItems([...conv.messages.values()]);
    for (const { item, view } of shown) {
      const text = indexText(item, view);
      const last = this.seen.get(item);
      if (last && last.status === item.status && last.text === text) continue;
      this.seen.set(item, { status: item.status, text });
      if (text) {
        any = this.index.add({ conversation: conv.id, id: item.id, seq: item.seq, senderId: item.sender_id, sender: item.sender, created: item.created, text }) || any;
        this.gone.delete(`${conv.id}:${item.id}`);
      } else if (this.index.has(conv.id, item.id)) {
        this.index.remove(conv.id, item.id);
        this.gone.add(`${conv.id}:${item.id}`);
        any = true;
      }
    }
    if (any) this.touched();
  }

  /** A message taken back (a `deleted` frame): out of the index. */
  forget(conversationId, messageId) {
    if (this.index.remove(conversationId, messageId)) {
      this.gone.add(`${conversationId}:${messageId}`);
      this.touched();
    }
  }

  drop(count) {
    if (count) this.touched();
  }

  touched() {
    this.changed();
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.flush(), SAVE_AFTER);
  }

  /**
   * The messages matching `query`: `{total, results: [{doc, parts}]}` newest first
   * (search-index.js).
   */
  search(query, options) {
    return this.index.search(query, options);
  }

  /**
   * Store the changed buckets, each merged with what another tab of this profile stored
   * meanwhile (its documents join this tab's, except those this tab removed), under a
   * Web Lock so two tabs never interleave a bucket.
   */
  flush() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const run = async () => {
      const dirty = this.index.takeDirty();
      for (const [conversation, bucket] of dirty) {
        const stored = await this.store.read(conversation, bucket);
        const fresh = stored.filter((row) => !this.index.has(conversation, row[0]) && !this.gone.has(`${conversation}:${row[0]}`));
        if (fresh.length) this.index.addRows(conversation, fresh);
        await this.store.write(conversation, bucket, this.index.bucketRows(conversation, bucket));
      }
    };
    const locked = () => (this.locks ? this.locks.request(`e2ee-chat-search:${this.app.deviceId}`, run) : run());
    this.saving = this.saving.catch(() => {}).then(locked);
    return this.saving;
  }

  // --- jumping to a result ---------------------------------------------------------------

  /**
   * Make sure the conversation shows the message `seq`: its newest page, then older
   * pages until `seq` is among them. Resolves whether it is shown.
   */
  async loadUntil(conversationId, seq) {
    const conv = this.app.get(conversationId);
    if (!conv) return false;
    if (!conv.loaded) await this.app.timeline.loadNewest(conv);
    while (!conv.messages.has(seq) && conv.hasMore && (conv.oldestSeq ?? Infinity) > seq) {
      if (conv.loading) {
        await conv.loading.catch(() => {});
        continue;
      }
      if (!(await this.app.loadOlder(conv))) break;
    }
    return conv.messages.has(seq);
  }

  // --- rebuilding --------------------------------------------------------------------------

  /**
   * Read every conversation's whole history again (pages of 100, newest first, through
   * the history API), open and check each message as the timeline does, and index the
   * readable ones; documents of messages no longer there are dropped. Search keeps
   * working meanwhile. Progress is `rebuildState` (`done` of about `total` messages);
   * `stopRebuild()` stops it (what was indexed stays).
   */
  rebuild() {
    if (this.rebuildState?.running) return this.rebuilding;
    const convs = [...this.app.conversations.values()].sort((a, b) => (b.last_activity ?? '').localeCompare(a.last_activity ?? ''));
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.rebuildState = { done: 0, total: convs.reduce((sum, c) => sum + (c.last_seq || 0), 0), running: true, stopped: false, failed: null, unreadable: 0 };
    this.changed();
    this.rebuilding = (async () => {
      try {
        for (const conv of convs) {
          if (signal.aborted) break;
          await this.rebuildConversation(conv, signal);
          await this.flush();
        }
      } catch (error) {
        this.rebuildState.failed = error instanceof ApiError ? 'The server cannot be reached.' : 'The index could not be rebuilt.';
      } finally {
        this.rebuildState.running = false;
        this.rebuildState.stopped = signal.aborted;
        await this.flush().catch(() => {});
        this.changed();
      }
    })();
    return this.rebuilding;
  }

  stopRebuild() {
    this.controller?.abort();
  }

  /**
   * One conversation's whole history, opened page by page (newest first), then folded
   * (edits, deletes) and indexed; what the index held of it up to its `last_seq` at the
   * start and the history no longer shows readable is dropped.
   */
  async rebuildConversation(conv, signal) {
    const top = conv.last_seq;
    const items = [];
    let before = null;
    for (;;) {
      if (signal.aborted) return;
      let page;
      try {
        page = await api.history(conv.id, { beforeSeq: before, limit: REBUILD_PAGE });
      } catch (error) {
        if (error instanceof ApiError && (error.code === 'not_member' || error.code === 'not_found' || error.code === 'forbidden')) return;
        throw error;
      }
      const messages = page.messages.filter((m) => m && m.conversation === conv.id && Number.isSafeInteger(m.seq) && Number.isSafeInteger(m.id));
      items.push(...(await this.openAll(conv, messages)).filter(Boolean));
      if (signal.aborted) return;
      this.rebuildState.done += page.messages.length;
      this.changed();
      if (!page.has_more || !page.messages.length) break;
      before = page.messages[0].seq;
    }
    // a replayed copy (same sender and client_msg_id, later seq) is not a second message
    const firsts = new Map();
    for (const item of items) {
      const client = `${item.sender_id}:${item.client_msg_id}`;
      if (!firsts.has(client) || firsts.get(client).seq > item.seq) firsts.set(client, item);
    }
    const kept = items.filter((item) => firsts.get(`${item.sender_id}:${item.client_msg_id}`) === item);
    const shown = new Set();
    const unreadable = new Set(items.filter((item) => item.status === 'failed').map((item) => item.id));
    for (const { item, view } of foldItems(kept)) {
      const text = indexText(item, view);
      if (!text) continue;
      shown.add(item.id);
      this.index.add({ conversation: conv.id, id: item.id, seq: item.seq, senderId: item.sender_id, sender: item.sender, created: item.created, text });
      this.gone.delete(`${conv.id}:${item.id}`);
    }
    for (const n of [...this.index.byKey.values()]) {
      const doc = this.index.docs[n];
      // not readable now (a failed open) keeps what the index held
      if (doc.conversation === conv.id && doc.seq <= top && !shown.has(doc.id) && !unreadable.has(doc.id)) {
        this.index.remove(conv.id, doc.id);
        this.gone.add(`${conv.id}:${doc.id}`);
      }
    }
  }

  /**
   * Open and check messages as the timeline does (timeline.js `openOne`), OPEN_AT_ONCE
   * at a time; one that fails is tried once more after the others (its sender's keys
   * are known by then). What still fails is counted in `rebuildState.unreadable`.
   */
  async openAll(conv, messages) {
    const open = (m) => this.app.timeline.openOne(conv, m).catch(() => null);
    const opened = [];
    for (let i = 0; i < messages.length; i += OPEN_AT_ONCE) opened.push(...(await Promise.all(messages.slice(i, i + OPEN_AT_ONCE).map(open))));
    for (let i = 0; i < opened.length; i += 1) {
      if (opened[i]?.status !== 'failed') continue;
      opened[i] = await open(messages[i]);
      if (opened[i]?.status === 'failed' && this.rebuildState) this.rebuildState.unreadable += 1;
    }
    return opened;
  }

  /** How many messages the index holds, and of how many conversations. */
  stats() {
    const convs = new Set();
    for (const n of this.index.byKey.values()) convs.add(this.index.docs[n].conversation);
    return { messages: this.index.size, conversations: convs.size };
  }
}

