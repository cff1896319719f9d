/**
 * The in-memory search index (no DOM, no storage; node-tested): messages as documents,
 * an inverted index from token to documents, and queries over it (search-text.js).
 *
 * A document is one shown message: `{conversation, id, seq, senderId, sender, created,
 * text}`, keyed by conversation and message id; adding it again replaces it. Documents
 * are filed in buckets of BUCKET seqs per conversation, the unit in which they are
 * stored (search-store.js): every change marks its bucket dirty.
 * @module search-index
 */

import { parseQuery, snippet, tokenize } from './search-text.js';

/** Seqs per stored bucket of one conversation. */
export const BUCKET = 256;

export const bucketOf = (seq) => Math.floor(seq / BUCKET);

/** Fields of a document, in the order a stored bucket keeps them. */
const FIELDS = ['id', 'seq', 'senderId', 'sender', 'created', 'text'];

export class SearchIndex {
  constructor() {
    this.clear();
  }

  clear() {
    /** @type {Array<object|null>} document by number (null: removed) */
    this.docs = [];
    /** @type {Map<string, number>} `<conversation>:<id>` -> document number */
    this.byKey = new Map();
    /** @type {Map<string, number[]>} token -> document numbers, ascending */
    this.postings = new Map();
    this.vocab = null;
    this.removed = 0;
    /** @type {Set<string>} `<conversation>:<bucket>` changed since takeDirty */
    this.dirty = new Set();
  }

  /** Documents held (not removed). */
  get size() {
    return this.byKey.size;
  }

  has(conversation, id) {
    return this.byKey.has(`${conversation}:${id}`);
  }

  get(conversation, id) {
    const n = this.byKey.get(`${conversation}:${id}`);
    return n === undefined ? undefined : this.docs[n];
  }

  /**
   * Add (or replace) a document; `{quiet: true}` does not mark its bucket dirty (it
   * came from storage). Returns whether anything changed.
   */
  add(doc, { quiet = false } = {}) {
    const key = `${doc.conversation}:${doc.id}`;
    const prior = this.byKey.get(key);
    if (prior !== undefined) {
      const old = this.docs[prior];
      if (old.text === doc.text && old.seq === doc.seq && old.sender === doc.sender) return false;
      this.dropNumber(prior, quiet);
    }
    const n = this.docs.length;
    const stored = {
      conversation: doc.conversation,
      id: doc.id,
      seq: doc.seq,
      senderId: doc.senderId,
      sender: doc.sender,
      created: doc.created,
      text: doc.text,
      time: Date.parse(doc.created) || 0,
    };
    this.docs.push(stored);
    this.byKey.set(key, n);
    for (const token of tokenize(doc.text)) {
      let list = this.postings.get(token);
      if (!list) {
        list = [];
        this.postings.set(token, list);
        this.vocab = null;
      }
      list.push(n);
    }
    if (!quiet) this.dirty.add(`${doc.conversation}:${bucketOf(doc.seq)}`);
    return true;
  }

  /** Remove one message's document (a deleted or no longer shown message). */
  remove(conversation, id) {
    const n = this.byKey.get(`${conversation}:${id}`);
    if (n === undefined) return false;
    this.dropNumber(n);
    this.maybeCompact();
    return true;
  }

  /** Remove a conversation's documents with `seq >= from` (a rollback), or all of them. */
  removeFrom(conversation, from = 0) {
    const gone = [...this.byKey.values()].filter((n) => this.docs[n].conversation === conversation && this.docs[n].seq >= from);
    for (const n of gone) this.dropNumber(n);
    this.maybeCompact();
    return gone.length;
  }

  dropNumber(n, quiet = false) {
    const doc = this.docs[n];
    this.docs[n] = null;
    this.byKey.delete(`${doc.conversation}:${doc.id}`);
    this.removed += 1;
    if (!quiet) this.dirty.add(`${doc.conversation}:${bucketOf(doc.seq)}`);
    // postings keep the number until compaction; queries skip removed documents
  }

  maybeCompact() {
    if (this.removed > 1000 && this.removed > this.docs.length / 4) this.compact();
  }

  /** Renumber the documents without the removed ones (postings rebuilt). */
  compact() {
    const alive = this.docs.filter(Boolean);
    const dirty = this.dirty;
    this.clear();
    this.dirty = dirty;
    for (const doc of alive) this.add(doc, { quiet: true });
  }

  /** The documents of one bucket, by seq, as stored rows. */
  bucketRows(conversation, bucket) {
    const rows = [];
    for (const n of this.byKey.values()) {
      const doc = this.docs[n];
      if (doc.conversation === conversation && bucketOf(doc.seq) === bucket) rows.push(FIELDS.map((f) => doc[f]));
    }
    return rows.sort((a, b) => a[1] - b[1]);
  }

  /** Add the stored rows of one conversation's bucket (quietly). */
  addRows(conversation, rows) {
    for (const row of rows) {
      if (!Array.isArray(row) || row.length !== FIELDS.length) continue;
      const doc = { conversation };
      FIELDS.forEach((f, i) => { doc[f] = row[i]; });
      if (Number.isSafeInteger(doc.id) && Number.isSafeInteger(doc.seq) && typeof doc.text === 'string') this.add(doc, { quiet: true });
    }
  }

  /** The dirty buckets as `[conversation, bucket]`, forgotten here. */
  takeDirty() {
    const out = [...this.dirty].map((key) => key.split(':').map(Number));
    this.dirty.clear();
    return out;
  }

  /** Every token, sorted (for prefix ranges); rebuilt after new tokens. */
  sortedVocab() {
    if (!this.vocab) this.vocab = [...this.postings.keys()].sort();
    return this.vocab;
  }

  /** The document numbers of tokens starting with `prefix` (a union of postings). */
  prefixDocs(prefix) {
    const vocab = this.sortedVocab();
    let lo = 0;
    let hi = vocab.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (vocab[mid] < prefix) lo = mid + 1;
      else hi = mid;
    }
    const lists = [];
    for (let i = lo; i < vocab.length && vocab[i].startsWith(prefix); i += 1) lists.push(this.postings.get(vocab[i]));
    if (lists.length === 1) return lists[0];
    const seen = new Uint8Array(this.docs.length);
    for (const list of lists) for (const n of list) seen[n] = 1;
    const out = [];
    for (let n = 0; n < seen.length; n += 1) if (seen[n]) out.push(n);
    return out;
  }

  /**
   * The messages matching `query`, newest first: `{total, results: [{doc, parts}]}`
   * (`parts` the snippet, search-text.js), at most `limit` results.
   */
  search(query, { limit = 50 } = {}) {
    const parsed = parseQuery(query);
    const { terms, prefix } = parsed;
    if (!terms.length || terms.length > 64) return { total: 0, results: [], parsed };
    const lists = terms.map((term, i) => (prefix && i === terms.length - 1 ? this.prefixDocs(term) : this.postings.get(term) ?? []));
    lists.sort((a, b) => a.length - b.length);
    let hits = lists[0];
    if (lists.length > 1) {
      const count = new Uint16Array(this.docs.length);
      for (const n of hits) count[n] = 1;
      for (let i = 1; i < lists.length; i += 1) for (const n of lists[i]) if (count[n] === i) count[n] = i + 1;
      hits = hits.filter((n) => count[n] === lists.length);
    }
    // the newest `limit` of the hits (kept sorted, newest first), without sorting them all
    const top = [];
    const newer = (a, b) => a.time > b.time || (a.time === b.time && a.seq > b.seq);
    let total = 0;
    for (const n of hits) {
      const doc = this.docs[n];
      if (!doc) continue;
      total += 1;
      if (top.length === limit && !newer(doc, top[limit - 1])) continue;
      let lo = 0;
      let hi = top.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (newer(top[mid], doc)) lo = mid + 1;
        else hi = mid;
      }
      top.splice(lo, 0, doc);
      if (top.length > limit) top.pop();
    }
    const results = top.map((doc) => ({ doc, parts: snippet(doc.text, parsed) }));
    return { total, results, parsed };
  }
}
