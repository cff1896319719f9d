/**
 * Order and replay (PROTOCOL.md §9): what a client remembers of the messages it showed,
 * and the verdict on each message that opened and verified.
 *
 * One Ledger per conversation, kept persistently by the caller (toJson / Ledger.fromJson,
 * the same form as Python's). Twin of chatclient/ordering.py, name for name.
 * @module ordering
 */

export const OK = 'ok';
export const REPLAYED = 'replayed';
export const OUT_OF_ORDER = 'out_of_order';
export const ROLLBACK = 'rollback';

/** The index of the first item of `list` (sorted by [0]) whose [0] is ≥ `seq`. */
function lowerBound(list, seq) {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid][0] < seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

function insertSorted(list, item) {
  const at = lowerBound(list, item[0]);
  list.splice(at, 0, item);
}

/**
 * The §9 state of one conversation.
 *
 * `entries` (message id -> judged entry `{id, seq, senderId, clientMsgId, sigKid, v, n,
 * verdict}`) is what is persisted; the indexes are rebuilt from it: every judged message
 * by seq (a seq is held by one message, whatever its verdict), the ok ones by (sender,
 * client_msg_id), each signing device's ok [seq, n] in seq order, and the ok v1 messages
 * in seq order.
 */
export class Ledger {
  constructor() {
    this.#reset();
  }

  /** @type {Map<number, {id:number, seq:number, senderId:number, clientMsgId:string, sigKid:string, v:number, n:number|null, verdict:string}>} */
  entries;
  #bySeq;
  #byClientId;
  #counters;
  #lowestV2Seq;
  #v1Ok;
  #maxSeq;
  #changed;

  #reset() {
    this.entries = new Map();
    this.#bySeq = new Map();
    this.#byClientId = new Map();
    this.#counters = new Map();
    this.#lowestV2Seq = null;
    this.#v1Ok = [];
    this.#maxSeq = null;
    this.#changed = [];
  }

  /**
   * The verdict on a message that opened and verified: `ok`, `replayed`, `out_of_order`
   * or `rollback`.
   *
   * A message judged before gets its recorded verdict again (the caller shows it once: a
   * second delivery of an id is a duplicate), unless the server now serves that id at
   * another seq or under another sender or id: `rollback`. Another id at a seq already
   * judged is `rollback` too. Verdicts other than `rollback` are recorded; only `ok` ones
   * count for later judgements. A v2 message judged `ok` below the seq of v1 messages
   * judged `ok` before makes those v1 messages `replayed` (§2: whichever loads first);
   * takeChanged then gives their ids.
   * @returns {string}
   */
  judge({ id, seq, senderId, clientMsgId, sigKid, v, n }) {
    const prior = this.entries.get(id);
    if (prior !== undefined) {
      const same = prior.seq === seq && prior.senderId === senderId && prior.clientMsgId === clientMsgId;
      return same ? prior.verdict : ROLLBACK;
    }
    if (v !== 1 && (n === null || n === undefined)) throw new TypeError('a v2 message has a counter n');
    const holder = this.#bySeq.get(seq);
    if (holder !== undefined && holder !== id) return ROLLBACK;
    const first = this.#byClientId.get(`${senderId}|${clientMsgId}`);
    let verdict;
    if ((first !== undefined && first !== id) || (v === 1 && this.#lowestV2Seq !== null && seq > this.#lowestV2Seq)) {
      verdict = REPLAYED;
    } else if (v !== 1 && this.#outOfOrder(sigKid, seq, n)) {
      verdict = OUT_OF_ORDER;
    } else {
      verdict = OK;
    }
    this.#record({ id, seq, senderId, clientMsgId, sigKid, v, n: v === 1 ? (n ?? null) : n, verdict });
    if (verdict === OK && v !== 1) this.#flagV1Above(seq);
    return verdict;
  }

  /** The recorded verdict of a message id, or null if it was never judged. */
  verdictOf(messageId) {
    return this.entries.get(messageId)?.verdict ?? null;
  }

  /**
   * The ids of messages judged `ok` earlier whose recorded verdict a later judgement
   * changed to `replayed` (v1 messages above a v2 one), since the last call; the caller
   * shows them as replayed. Not persisted: verdictOf and toJson already hold the new
   * verdicts.
   * @returns {number[]}
   */
  takeChanged() {
    const changed = this.#changed;
    this.#changed = [];
    return changed;
  }

  /** Whether the conversation's `last_seq` is below a seq already judged. */
  isRollback(lastSeq) {
    return this.#maxSeq !== null && lastSeq < this.#maxSeq;
  }

  /**
   * Forget every message judged at `seq` or above: after a rollback, the client loads
   * them again from the server.
   */
  forgetFrom(seq) {
    const kept = [...this.entries.values()].filter((entry) => entry.seq < seq).sort((a, b) => a.seq - b.seq);
    this.#reset();
    for (const entry of kept) this.#record(entry);
  }

  #outOfOrder(sigKid, seq, n) {
    const shown = this.#counters.get(sigKid);
    if (!shown || shown.length === 0) return false;
    const at = lowerBound(shown, seq);
    const before = at > 0 ? shown[at - 1] : null;
    const after = at < shown.length ? shown[at] : null;
    return (before !== null && before[1] >= n) || (after !== null && after[1] <= n);
  }

  #flagV1Above(seq) {
    while (this.#v1Ok.length > 0 && this.#v1Ok[this.#v1Ok.length - 1][0] > seq) {
      const [, messageId] = this.#v1Ok.pop();
      const entry = this.entries.get(messageId);
      this.entries.set(messageId, { ...entry, verdict: REPLAYED });
      this.#byClientId.delete(`${entry.senderId}|${entry.clientMsgId}`);
      this.#changed.push(messageId);
    }
  }

  #record(entry) {
    this.entries.set(entry.id, entry);
    this.#bySeq.set(entry.seq, entry.id);
    if (this.#maxSeq === null || entry.seq > this.#maxSeq) this.#maxSeq = entry.seq;
    if (entry.verdict !== OK) return;
    this.#byClientId.set(`${entry.senderId}|${entry.clientMsgId}`, entry.id);
    if (entry.v === 1) {
      insertSorted(this.#v1Ok, [entry.seq, entry.id]);
      return;
    }
    if (!this.#counters.has(entry.sigKid)) this.#counters.set(entry.sigKid, []);
    insertSorted(this.#counters.get(entry.sigKid), [entry.seq, entry.n]);
    if (this.#lowestV2Seq === null || entry.seq < this.#lowestV2Seq) this.#lowestV2Seq = entry.seq;
  }

  /**
   * The persisted form, the same as Python's: one list `[id, seq, sender_id,
   * client_msg_id, sig_kid, v, n, verdict]` per judged message, in seq order.
   * @returns {Array<Array>}
   */
  toJson() {
    return [...this.entries.values()]
      .sort((a, b) => a.seq - b.seq || a.id - b.id)
      .map((e) => [e.id, e.seq, e.senderId, e.clientMsgId, e.sigKid, e.v, e.n, e.verdict]);
  }

  /** A ledger from toJson's form (verdicts as recorded). @returns {Ledger} */
  static fromJson(data) {
    const ledger = new Ledger();
    for (const [id, seq, senderId, clientMsgId, sigKid, v, n, verdict] of data) {
      ledger.#record({ id, seq, senderId, clientMsgId, sigKid, v, n, verdict });
    }
    return ledger;
  }
}
