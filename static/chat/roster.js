/**
 * Group rosters (PROTOCOL.md §8): signed, hash-chained records of who is in a group.
 *
 * Twin of chatclient/roster.py, name for name in camelCase. The server and every client
 * apply the same rules through RosterState.apply; who may sign for whom (which device
 * keys of `by` count) is the caller's to say, through the `signingKey` callback of
 * verifyChain. WebCrypto only. verifyChain hashes and verifies a window of records
 * concurrently and applies them in order, so a long chain costs about one round of
 * WebCrypto calls per window, and continuing from a verified state re-hashes nothing
 * before it.
 * @module roster
 */

import { MAX_COUNTER, ProtocolError, b64decode, b64encode, isKid, isUuid4, kidOf, pssSign, pssVerify, sha256Hex } from './protocol.js';

const encoder = new TextEncoder();

export const GENESIS = '0'.repeat(64);
export const OPS = ['create', 'add', 'remove', 'leave', 'title'];
/** The fields a maker posts, exactly. */
export const SIGNED_FIELDS = ['n', 'prev', 'op', 'subjects', 'by', 'title', 'sig_kid', 'sig', 'hash'];
/** What the server serves: the signed fields and `created`. */
export const RECORD_FIELDS = [...SIGNED_FIELDS, 'created'];
export const MAX_SUBJECTS = 1000;
export const MAX_TITLE_CHARS = 200;
/** How many records verifyChain hashes and verifies at once. */
const WINDOW = 256;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A record that is malformed (`bad_request`), not allowed by the rules (`forbidden` when
 * `by` may not act, else `bad_request`), not signed by an acceptable key
 * (`bad_signature`), or not the next link of the chain (`stale_roster`).
 */
export class RosterError extends ProtocolError {
  constructor(code, detail = '') {
    super(code, detail);
    this.name = 'RosterError';
  }
}

function isUserId(value) {
  return Number.isSafeInteger(value) && value >= 1 && value <= MAX_COUNTER;
}

const titleHashes = new Map();

/** Hex SHA-256 of the title's UTF-8 (of the empty string for null). @returns {Promise<string>} */
export function titleHash(title) {
  const text = title ?? '';
  let hash = titleHashes.get(text);
  if (hash === undefined) {
    hash = sha256Hex(text);
    if (titleHashes.size > 1000) titleHashes.clear();
    titleHashes.set(text, hash);
  }
  return hash;
}

/**
 * R_n of §8: `e2ee-chat/v2/roster|<gid>|<n>|<prev>|<op>|<subjects>|<by>|<title_hash>`,
 * subjects joined by `,`. @returns {Promise<string>}
 */
export async function rosterString(gid, n, prev, op, subjects, by, title) {
  return `e2ee-chat/v2/roster|${gid}|${n}|${prev}|${op}|${subjects.join(',')}|${by}|${await titleHash(title)}`;
}

function recordString(gid, record) {
  return rosterString(gid, record.n, record.prev, record.op, record.subjects, record.by, record.title);
}

/** h_n of §8: hex SHA-256 of `R_n + "|" + sig` (the record's own base64 `sig`). @returns {Promise<string>} */
export async function recordHash(gid, record) {
  return sha256Hex(`${await recordString(gid, record)}|${record.sig}`);
}

/**
 * Check a record's shape: exactly the fields a maker sends (and `created` too when
 * `served` by the server), types, ascending subjects, canonical base64; else
 * RosterError('bad_request'). Signature, hash and rules are not checked here.
 */
export function validateRecord(record, { served = false } = {}) {
  const fields = served ? RECORD_FIELDS : SIGNED_FIELDS;
  const keys = record !== null && typeof record === 'object' && !Array.isArray(record) ? Object.keys(record) : null;
  if (!keys || !SIGNED_FIELDS.every((f) => Object.hasOwn(record, f)) || !keys.every((k) => fields.includes(k))) {
    throw new RosterError('bad_request', `a roster record has exactly ${fields}`);
  }
  if (!Number.isSafeInteger(record.n) || record.n < 0) throw new RosterError('bad_request', 'n must be an integer from 0');
  if (!isKid(record.prev) || !isKid(record.hash)) {
    throw new RosterError('bad_request', 'prev and hash must be 64 lowercase hex digits');
  }
  if (!OPS.includes(record.op)) throw new RosterError('bad_request', `op must be one of ${OPS.join(', ')}`);
  const { subjects } = record;
  if (!Array.isArray(subjects) || subjects.length > MAX_SUBJECTS || !subjects.every(isUserId)
      || subjects.some((s, i) => i > 0 && subjects[i - 1] >= s)) {
    throw new RosterError('bad_request', 'subjects must be strictly ascending user ids');
  }
  if (!isUserId(record.by)) throw new RosterError('bad_request', 'by must be a user id');
  const { title } = record;
  if (title !== null && (typeof title !== 'string' || title === '' || LONE_SURROGATE.test(title)
      || [...title].length > MAX_TITLE_CHARS)) {
    throw new RosterError('bad_request', `title must be null or 1..${MAX_TITLE_CHARS} characters`);
  }
  if (!isKid(record.sig_kid)) throw new RosterError('bad_request', 'sig_kid must be a kid');
  let sig;
  try {
    sig = b64decode(record.sig);
  } catch (error) {
    throw new RosterError('bad_request', `sig: ${error.detail}`);
  }
  if (sig.length === 0) throw new RosterError('bad_request', 'sig: sig is empty');
  if (served && Object.hasOwn(record, 'created') && typeof record.created !== 'string') {
    throw new RosterError('bad_request', 'created must be a time');
  }
}

/**
 * A record signed by `deviceKeys` (a device of `by`), with its `hash`: what
 * `POST …/roster/` takes. `subjects` are de-duplicated and sorted here.
 * @returns {Promise<object>}
 */
export async function makeRecord(deviceKeys, { gid, n, prev, op, subjects, by, title = null }) {
  if (!isUuid4(gid)) throw new RosterError('bad_request', 'gid must be a lowercase UUID4');
  const sorted = [...new Set(subjects)].sort((a, b) => a - b);
  const text = await rosterString(gid, n, prev, op, sorted, by, title);
  const sig = b64encode(await pssSign(deviceKeys.sigPrivate, encoder.encode(text)));
  const record = { n, prev, op, subjects: sorted, by, title, sig_kid: deviceKeys.sigKid, sig };
  record.hash = await sha256Hex(`${text}|${sig}`);
  validateRecord(record);
  return record;
}

/** Whether `sig` is `sigPublic`'s (RSA-PSS CryptoKey) signature of R_n and `sig_kid` is its kid. @returns {Promise<boolean>} */
export async function verifyRecordSignature(gid, record, sigPublic) {
  if (record.sig_kid !== (await kidOf(sigPublic))) return false;
  const text = await recordString(gid, record);
  return pssVerify(sigPublic, encoder.encode(text), b64decode(record.sig));
}

/**
 * What a verified chain says: members, owner, title, and its history of heads.
 *
 * `heads` maps each record hash to its n; `spans` keeps, per user, the
 * `[joined at n, left at n or null]` intervals, so memberAt answers whether a user was a
 * member at any verified head, and the owner rule finds each member's latest joining
 * record. `n` is -1 and `head` GENESIS before record 0. The current members are kept as
 * a set beside the spans, so each record costs time in its own subjects only.
 */
export class RosterState {
  #members = new Set();

  constructor(gid) {
    this.gid = gid;
    this.n = -1;
    this.head = GENESIS;
    this.owner = null;
    this.title = null;
    this.closed = false;
    /** @type {Map<string, number>} */
    this.heads = new Map();
    /** @type {Map<number, Array<[number, number|null]>>} */
    this.spans = new Map();
  }

  /** The current members' user ids (a new Set). */
  get members() {
    return new Set(this.#members);
  }

  /** Whether `userId` is a current member. */
  isMember(userId) {
    return this.#members.has(userId);
  }

  /** The n of a current member's latest joining record (null for a non-member). */
  joinedAt(userId) {
    if (!this.#members.has(userId)) return null;
    const spans = this.spans.get(userId);
    return spans[spans.length - 1][0];
  }

  /** Whether `userId` was a member at the verified record whose hash is `head`. */
  memberAt(userId, head) {
    const at = this.heads.get(head);
    if (at === undefined) return false;
    return (this.spans.get(userId) ?? []).some(([start, end]) => start <= at && (end === null || at < end));
  }

  /**
   * Whether `record` may follow this state: chain position, then §8's rules. Throws
   * RosterError: `stale_roster` (n or prev is not the next link), `forbidden` (`by` may
   * not do this) or `bad_request` (the subjects or title break the rules, or no member
   * is left).
   */
  check(record) {
    this.checkPosition(record);
    this.checkRules(record);
  }

  /** `stale_roster` unless `record` is the next link: n = this n + 1, prev = head. */
  checkPosition(record) {
    if (record.n !== this.n + 1 || record.prev !== this.head) {
      throw new RosterError('stale_roster', `record ${record.n} does not follow record ${this.n}`);
    }
  }

  /**
   * §8's rules for `record` after this state (its position is not checked here):
   * `forbidden` when `by` may not act, `bad_request` otherwise.
   */
  checkRules(record) {
    const { n, op, by, subjects, title } = record;
    const members = this.#members;
    if (this.closed) throw new RosterError('bad_request', 'the group has no member left');
    if ((op === 'create') !== (n === 0)) throw new RosterError('bad_request', 'record 0, and only it, is a create');
    if (op === 'create') {
      if (!subjects.includes(by)) throw new RosterError('bad_request', 'the creator must be among the first members');
      return;
    }
    if (title !== null && op !== 'title') throw new RosterError('bad_request', `a ${op} record has no title`);
    if ((op === 'add' || op === 'remove') && by !== this.owner) throw new RosterError('forbidden', `only the owner may ${op} members`);
    if ((op === 'leave' || op === 'title') && !members.has(by)) throw new RosterError('forbidden', `only a member may ${op}`);
    if (op === 'add' && (subjects.length === 0 || subjects.some((u) => members.has(u)))) {
      throw new RosterError('bad_request', 'add names one or more users who are not members');
    }
    if (op === 'remove' && (subjects.length === 0 || subjects.includes(by) || !subjects.every((u) => members.has(u)))) {
      throw new RosterError('bad_request', 'remove names members other than the owner');
    }
    if (op === 'leave' && (subjects.length !== 1 || subjects[0] !== by)) {
      throw new RosterError('bad_request', 'leave names exactly its maker');
    }
    if (op === 'title' && (subjects.length > 0 || title === null)) {
      throw new RosterError('bad_request', 'a title record names no subject and a title');
    }
  }

  /** `check` the record, then change the state by it (this object is updated). */
  apply(record) {
    this.check(record);
    const { n, op, by, subjects } = record;
    if (op === 'create' || op === 'add') {
      for (const user of subjects) {
        if (!this.spans.has(user)) this.spans.set(user, []);
        this.spans.get(user).push([n, null]);
        this.#members.add(user);
      }
    } else if (op === 'remove' || op === 'leave') {
      for (const user of subjects) {
        const spans = this.spans.get(user);
        spans[spans.length - 1][1] = n;
        this.#members.delete(user);
      }
    }
    if (op === 'create') {
      this.owner = by;
      this.title = record.title;
    } else if (op === 'title') {
      this.title = record.title;
    } else if (op === 'leave' && by === this.owner) {
      let heir = null;
      for (const user of this.#members) {
        const joined = this.joinedAt(user);
        if (heir === null || joined < heir[0] || (joined === heir[0] && user < heir[1])) heir = [joined, user];
      }
      this.owner = heir === null ? null : heir[1];
      this.closed = heir === null;
    }
    this.n = n;
    this.head = record.hash;
    this.heads.set(record.hash, n);
  }

  /** An independent copy. */
  copy() {
    const state = new RosterState(this.gid);
    Object.assign(state, { n: this.n, head: this.head, owner: this.owner, title: this.title, closed: this.closed });
    state.heads = new Map(this.heads);
    state.spans = new Map([...this.spans].map(([user, spans]) => [user, spans.map((s) => [...s])]));
    state.#members = new Set(this.#members);
    return state;
  }

  /** A JSON-able form for persisting a verified state, the same as Python's to_json (fromJson reads it). */
  toJson() {
    return {
      gid: this.gid,
      n: this.n,
      head: this.head,
      owner: this.owner,
      title: this.title,
      closed: this.closed,
      heads: Object.fromEntries(this.heads),
      spans: Object.fromEntries([...this.spans].map(([user, spans]) => [String(user), spans.map((s) => [...s])])),
    };
  }

  /** A state from toJson's (or Python's to_json) form. */
  static fromJson(data) {
    const state = new RosterState(data.gid);
    Object.assign(state, { n: data.n, head: data.head, owner: data.owner, title: data.title, closed: data.closed });
    state.heads = new Map(Object.entries(data.heads));
    state.spans = new Map(Object.entries(data.spans).map(([user, spans]) => [Number(user), spans.map((s) => [...s])]));
    for (const [user, spans] of state.spans) {
      if (spans.length > 0 && spans[spans.length - 1][1] === null) state.#members.add(user);
    }
    return state;
  }
}

/**
 * The crypto of one record, started at once: its R_n, hash, and signature check under
 * the key `keyFor(record)` resolves (null: no acceptable key).
 */
function startCrypto(gid, record, keyFor) {
  const text = recordString(gid, record);
  const hash = text.then((t) => sha256Hex(`${t}|${record.sig}`));
  const signed = Promise.all([text, keyFor(record)]).then(async ([t, key]) => {
    if (!key || record.sig_kid !== (await kidOf(key))) return false;
    return pssVerify(key, encoder.encode(t), b64decode(record.sig));
  });
  // Results are awaited in order; a failure earlier in the chain leaves later ones unread.
  hash.catch(() => {});
  signed.catch(() => {});
  return { hash, signed };
}

/**
 * Check one record whose crypto has been started, in the server's order, then apply it.
 * `shapeError` is what validateRecord threw for it (undefined: not checked yet, null: fine).
 */
async function checkAndApply(state, record, crypto, served, shapeError = undefined) {
  if (shapeError === undefined) validateRecord(record, { served });
  else if (shapeError !== null) throw shapeError;
  state.checkPosition(record);
  if ((await crypto().hash) !== record.hash) throw new RosterError('bad_request', `record ${record.n}: hash is wrong`);
  if (!(await crypto().signed)) throw new RosterError('bad_signature', `record ${record.n}: signature does not verify`);
  state.apply(record);
}

/**
 * Check one record against `state` and apply it, in the server's order: shape
 * (`bad_request`), chain position (`stale_roster`), hash (`bad_request`), the signature
 * by the key `await signingKey(record)` gives (`bad_signature`; null means no acceptable
 * device of `by` holds `sig_kid`), then the rules (`forbidden` / `bad_request`). Rejects
 * with RosterError and leaves `state` unchanged.
 * @returns {Promise<void>}
 */
export async function verifyRecord(state, record, signingKey, { served = false } = {}) {
  let started = null;
  const crypto = () => (started ??= startCrypto(state.gid, record, async (r) => signingKey(r)));
  await checkAndApply(state, record, crypto, served);
}

/**
 * Verify `records` in order, from record 0 or continuing `state` (which is copied, not
 * changed), and resolve the resulting state; the first bad record rejects with
 * RosterError (the same error the records one by one through verifyRecord give).
 * `signingKey(record)` may be async and resolves an RSA-PSS CryptoKey or null; within one
 * call it is asked once per distinct (`by`, `sig_kid`), so each key is looked up and
 * imported once. Records are hashed and verified a window at a time, concurrently.
 * @returns {Promise<RosterState>}
 */
export async function verifyChain(gid, records, signingKey, { state = null, served = true } = {}) {
  if (!isUuid4(gid)) throw new RosterError('bad_request', 'gid must be a lowercase UUID4');
  const current = state === null ? new RosterState(gid) : state.copy();
  if (current.gid !== gid) throw new RosterError('bad_request', 'the state is of another group');
  const keys = new Map();
  const keyFor = (record) => {
    const id = `${record.by}|${record.sig_kid}`;
    if (!keys.has(id)) keys.set(id, Promise.resolve().then(() => signingKey(record)));
    return keys.get(id);
  };
  const list = Array.from(records);
  for (let start = 0; start < list.length; start += WINDOW) {
    const window = list.slice(start, start + WINDOW);
    const shapeErrors = window.map((record) => {
      try {
        validateRecord(record, { served });
        return null;
      } catch (error) {
        return error; // checkAndApply throws it when it gets there
      }
    });
    const started = window.map((record, i) => (shapeErrors[i] ? null : startCrypto(gid, record, keyFor)));
    for (const [i, record] of window.entries()) {
      await checkAndApply(current, record, () => started[i], served, shapeErrors[i]);
    }
  }
  return current;
}
