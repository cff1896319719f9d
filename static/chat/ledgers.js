/**
 * The §9 ledgers (ordering.js `Ledger`), one per conversation, kept in IndexedDB
 * (`kv/ledger:<user_id>:<conversation_id>`, Ledger.toJson's form) so order and replay are
 * judged against everything this browser showed before, across reloads.
 *
 * Saving merges with what is stored inside one readwrite transaction (two tabs of one
 * profile judge the same conversation; neither drops the other's entries), and a verdict
 * is saved before the message it judged is shown.
 * @module ledgers
 */

import { Ledger } from './ordering.js';
import { kv as defaultKv } from './store.js';

export class LedgerStore {
  /** @param {number} userId @param {object} [kv] the kv store (tests pass an in-memory one) */
  constructor(userId, kv = defaultKv) {
    this.userId = userId;
    this.kv = kv;
    /** @type {Map<number, Promise<Ledger>>} */
    this.ledgers = new Map();
    this.waiting = new Map();
    this.running = new Map();
  }

  key(conversationId) {
    return `ledger:${this.userId}:${conversationId}`;
  }

  /** The conversation's ledger, read from storage the first time. @returns {Promise<Ledger>} */
  get(conversationId) {
    if (!this.ledgers.has(conversationId)) {
      const loading = this.kv.get(this.key(conversationId)).then((saved) => (Array.isArray(saved) ? Ledger.fromJson(saved) : new Ledger()));
      loading.catch(() => this.ledgers.delete(conversationId));
      this.ledgers.set(conversationId, loading);
    }
    return this.ledgers.get(conversationId);
  }

  /**
   * Store the ledger, merged with what another tab stored meanwhile (entries by message
   * id; this tab's verdicts win); entries only the other tab had join this tab's ledger.
   * A save asked for while one waits to start is that one. Callers judge and save
   * without holding a ledger across an `await` (a merge may replace it).
   * @returns {Promise<void>}
   */
  save(conversationId) {
    const waiting = this.waiting.get(conversationId);
    if (waiting) return waiting;
    const before = this.running.get(conversationId) ?? Promise.resolve();
    const next = before.catch(() => {}).then(() => {
      this.waiting.delete(conversationId);
      return this.write(conversationId);
    });
    this.waiting.set(conversationId, next);
    this.running.set(conversationId, next);
    return next;
  }

  async write(conversationId) {
    const ledger = await this.get(conversationId);
    const mine = ledger.toJson();
    let theirs = [];
    await this.kv.update(this.key(conversationId), (stored) => {
      if (!Array.isArray(stored) || !stored.length) return mine;
      const ids = new Set(mine.map((entry) => entry[0]));
      theirs = stored.filter((entry) => !ids.has(entry[0]));
      return theirs.length ? sortEntries([...mine, ...theirs]) : mine;
    });
    if (theirs.length) {
      const current = await this.get(conversationId);
      const ids = new Set(current.toJson().map((entry) => entry[0]));
      const merged = sortEntries([...current.toJson(), ...theirs.filter((entry) => !ids.has(entry[0]))]);
      this.ledgers.set(conversationId, Promise.resolve(Ledger.fromJson(merged)));
    }
  }

  /**
   * After a rollback: forget every message judged at `seq` or above and store that
   * (replacing, not merging), so the conversation is judged afresh as it reloads.
   */
  async forgetFrom(conversationId, seq) {
    const ledger = await this.get(conversationId);
    ledger.forgetFrom(seq);
    await this.running.get(conversationId)?.catch(() => {});
    await this.kv.set(this.key(conversationId), ledger.toJson());
  }
}

function sortEntries(entries) {
  return entries.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
}
