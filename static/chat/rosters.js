/**
 * Who is in each conversation, as far as this device can verify it (PROTOCOL §8): the
 * signed roster of every group, verified from record 0 or from the last verified record
 * and kept in IndexedDB (`kv/roster:<user_id>:<conversation_id>`), and the two people of
 * every direct conversation, pinned on first sight.
 *
 * The server's word (its `members`, `owner`, `title`, `gid`, `roster_head`, the heads
 * messages name) is compared with that; any disagreement, a chain that does not verify,
 * a changed `gid`, or a direct conversation whose members are not exactly its two people
 * marks the conversation *tampered*. That mark is kept, shown in the conversation, and
 * stops every send to it (`targets` throws). Nothing is fixed up silently.
 *
 * Events: `change` (detail: conversation id) when a conversation's verified state,
 * events or tampered mark change.
 * @module rosters
 */

import { api, ApiError } from './api.js';
import { IdentityPendingError } from './directory.js';
import { isUuid4 } from './protocol.js';
import { RosterError, RosterState, verifyChain } from './roster.js';
import { kv as defaultKv } from './store.js';

/** Sending to this conversation is not allowed now; `message` says why, plainly. */
export class NotSendable extends Error {
  constructor(message, kind = 'blocked') {
    super(message);
    this.name = 'NotSendable';
    this.kind = kind;
  }
}

const TAMPER_TEXT = {
  direct_members: 'The server listed someone other than the two of you in this direct conversation.',
  direct_roster: 'The server presented this direct conversation as a group.',
  gid_changed: 'The group’s id changed.',
  roster_dropped: 'The server no longer shows this group’s signed member list.',
  bad_gid: 'The server gave this group an invalid id.',
  no_head: 'The server gave this group an id but no signed member list.',
  chain: 'The signed member list does not verify',
  missing_head: 'The server announced a member-list change it cannot show.',
  members_mismatch: 'The member list the server shows differs from the signed one.',
  owner_mismatch: 'The owner the server shows differs from the signed member list.',
  title_mismatch: 'The title the server shows differs from the signed member list.',
  unknown_head: 'A message names a version of the member list the server cannot show.',
  sender_not_member: 'A message came from someone who was not a member when it was sent.',
};

/**
 * @typedef {object} RosterEntry
 * @property {'direct'|'group'} kind
 * @property {string|null} gid the pinned group id
 * @property {RosterState|null} state the verified state (groups with a roster)
 * @property {number[]|null} pair the two user ids of a direct conversation
 * @property {Array<object>} events verified records: {n, op, by, subjects, title, created, hash}
 * @property {{code: string, text: string, at: string}|null} tampered
 */

export class RosterStore extends EventTarget {
  /**
   * @param {{me: {id: number, username: string}, directory: {recordSigner: Function}, kv?: object}} deps
   */
  constructor({ me, directory, kv = defaultKv }) {
    super();
    this.me = me;
    this.directory = directory;
    this.kv = kv;
    /** @type {Map<number, RosterEntry>} */
    this.entries = new Map();
    /** user id -> username, from every member list and key lookup seen */
    this.names = new Map();
    this.queues = new Map();
  }

  key(conversationId) {
    return `roster:${this.me.id}:${conversationId}`;
  }

  get namesKey() {
    return `names:${this.me.id}`;
  }

  /** Read the persisted entries of these conversations and the names seen before. */
  async load(conversationIds) {
    const names = await this.kv.get(this.namesKey);
    if (names && typeof names === 'object') for (const [id, name] of Object.entries(names)) this.names.set(Number(id), name);
    await Promise.all(conversationIds.map(async (id) => {
      if (this.entries.has(id)) return;
      const saved = await this.kv.get(this.key(id));
      if (saved) this.entries.set(id, fromSaved(saved));
    }));
    return this;
  }

  entry(conversationId) {
    return this.entries.get(conversationId) ?? null;
  }

  /** The verified state of a group (a RosterState), or null. */
  state(conversationId) {
    return this.entries.get(conversationId)?.state ?? null;
  }

  /** The tampered mark `{code, text, at}` of a conversation, or null. */
  tampered(conversationId) {
    return this.entries.get(conversationId)?.tampered ?? null;
  }

  /** `{userId, username}` while a record signed under an unaccepted identity waits, else null. */
  waiting(conversationId) {
    return this.entries.get(conversationId)?.waiting ?? null;
  }

  /** Verify again every group waiting on an identity (trust changed). */
  retryWaiting(conversations) {
    return Promise.all(conversations.filter((conv) => this.waiting(conv.id)).map((conv) => this.refresh(conv).catch(() => {})));
  }

  /** Verified roster events of a conversation, oldest first. */
  events(conversationId) {
    return this.entries.get(conversationId)?.events ?? [];
  }

  /** A username for a user id (from member lists seen), or null. */
  nameOf(userId) {
    return this.names.get(userId) ?? null;
  }

  /** Whether `userId` is a member now by the verified roster (groups), else by the pinned pair. */
  isMember(conversationId, userId) {
    const entry = this.entries.get(conversationId);
    if (!entry) return null;
    if (entry.kind === 'direct') return entry.pair ? entry.pair.includes(userId) : null;
    return entry.state ? entry.state.isMember(userId) : null;
  }

  /**
   * Check a conversation object from the server (the list, a `conversation` frame, or an
   * answer) against what this device verified, fetching and verifying new roster records
   * when its `roster_head` is new. Runs one at a time per conversation. Resolves the
   * entry; a failed check marks the conversation tampered (it does not throw).
   */
  observe(data) {
    this.learnNames(data.members ?? []);
    if (data.owner) this.learnNames([data.owner]);
    return this.serial(data.id, () => this.check(data));
  }

  /**
   * Fetch and verify records after the last verified one (a message named an unknown
   * head, or the server answered `stale_roster`). With `head` ({n, hash}, the head the
   * server reported), the chain must then contain it.
   */
  refresh(conv, { head = undefined } = {}) {
    return this.serial(conv.id, async () => {
      const entry = this.entries.get(conv.id);
      if (!entry || entry.tampered || entry.kind !== 'group') return entry;
      if (head === null) {
        if (entry.state) await this.tamper(entry, conv.id, 'roster_dropped');
        return entry;
      }
      if (!entry.state && !entry.gid) return entry;
      await this.advance(entry, conv.id);
      if (head && !entry.tampered && !entry.waiting && entry.state?.heads.get(head.hash) !== head.n) {
        await this.tamper(entry, conv.id, 'missing_head');
      }
      return entry;
    });
  }

  /** Resolves once the checks of this conversation under way now have finished. */
  settled(conversationId) {
    return this.serial(conversationId, async () => {});
  }

  serial(conversationId, task) {
    const before = this.queues.get(conversationId) ?? Promise.resolve();
    const run = before.then(task, task);
    const tail = run.catch(() => {});
    this.queues.set(conversationId, tail);
    tail.then(() => {
      if (this.queues.get(conversationId) === tail) this.queues.delete(conversationId);
    });
    return run;
  }

  async check(data) {
    let entry = this.entries.get(data.id);
    if (!entry) {
      entry = { kind: data.kind === 'direct' ? 'direct' : 'group', gid: null, state: null, pair: null, events: [], tampered: null };
      this.entries.set(data.id, entry);
    }
    if (entry.tampered) return entry;
    if (entry.kind !== (data.kind === 'direct' ? 'direct' : 'group')) {
      return this.tamper(entry, data.id, entry.kind === 'direct' ? 'direct_roster' : 'members_mismatch');
    }
    if (entry.kind === 'direct') return this.checkDirect(entry, data);
    return this.checkGroup(entry, data);
  }

  async checkDirect(entry, data) {
    if (data.gid != null || data.roster_head != null) return this.tamper(entry, data.id, 'direct_roster');
    const members = data.members ?? [];
    const ids = [...new Set(members.map((m) => m.id))].sort((a, b) => a - b);
    const others = (pair) => members.filter((m) => !pair.includes(m.id)).map((m) => m.username);
    if (ids.length !== 2 || members.length !== 2 || !ids.includes(this.me.id)) {
      const detail = entry.pair ? others(entry.pair).join(', ') : `listed: ${others([this.me.id]).join(', ') || 'no one else'}`;
      return this.tamper(entry, data.id, 'direct_members', detail);
    }
    if (!entry.pair) {
      entry.pair = ids;
      await this.save(data.id, entry);
    } else if (entry.pair[0] !== ids[0] || entry.pair[1] !== ids[1]) {
      return this.tamper(entry, data.id, 'direct_members', others(entry.pair).join(', '));
    }
    return entry;
  }

  async checkGroup(entry, data) {
    if (data.gid == null) {
      if (entry.gid || entry.state) return this.tamper(entry, data.id, 'roster_dropped');
      return entry; // a group from before signed rosters (v1): its owner signs it (§8)
    }
    if (!isUuid4(data.gid)) return this.tamper(entry, data.id, 'bad_gid');
    if (entry.gid && entry.gid !== data.gid) return this.tamper(entry, data.id, 'gid_changed');
    if (!entry.gid) {
      entry.gid = data.gid;
      await this.save(data.id, entry);
    }
    const head = data.roster_head;
    if (!head || !Number.isSafeInteger(head.n) || typeof head.hash !== 'string') return this.tamper(entry, data.id, 'no_head');
    if (entry.state?.heads.get(head.hash) !== head.n) {
      if (entry.state && entry.state.n >= head.n) return this.tamper(entry, data.id, 'missing_head');
      await this.advance(entry, data.id);
      if (entry.tampered || entry.waiting) return entry;
      if (entry.state?.heads.get(head.hash) !== head.n) return this.tamper(entry, data.id, 'missing_head');
    }
    return this.compare(entry, data);
  }

  /**
   * The server's member list, owner and title against the verified state at the head it
   * announced: members at any verified head (a snapshot may lag behind a newer record),
   * owner and title when that head is the newest.
   */
  async compare(entry, data) {
    const { state } = entry;
    const hash = data.roster_head.hash;
    const shown = new Set((data.members ?? []).map((m) => m.id));
    const signed = new Set([...state.spans.keys()].filter((user) => state.memberAt(user, hash)));
    if (shown.size !== (data.members ?? []).length || shown.size !== signed.size || ![...shown].every((u) => signed.has(u))) {
      const unsigned = (data.members ?? []).filter((m) => !signed.has(m.id)).map((m) => m.username);
      const hidden = [...signed].filter((u) => !shown.has(u)).map((u) => this.names.get(u) ?? `user ${u}`);
      const parts = [];
      if (unsigned.length) parts.push(`listed but not in the signed list: ${unsigned.join(', ')}`);
      if (hidden.length) parts.push(`signed but not listed: ${hidden.join(', ')}`);
      return this.tamper(entry, data.id, 'members_mismatch', parts.join('; '));
    }
    if (hash === state.head) {
      if ((data.owner?.id ?? null) !== state.owner) return this.tamper(entry, data.id, 'owner_mismatch');
      if ((data.title ?? null) !== state.title) return this.tamper(entry, data.id, 'title_mismatch');
    }
    return entry;
  }

  /** Fetch the records after the verified state and verify them; a failure tampers. */
  async advance(entry, conversationId) {
    let records;
    try {
      ({ records } = await api.roster(conversationId, entry.state ? entry.state.n : -1));
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.code !== 'rate_limited') {
        return this.tamper(entry, conversationId, 'missing_head');
      }
      throw error; // offline: tried again on the next change
    }
    if (!Array.isArray(records)) return this.tamper(entry, conversationId, 'chain', 'the server’s answer is not a list of records');
    if (!records.length) return entry;
    let state;
    try {
      state = await verifyChain(entry.gid, records, (record) => this.directory.recordSigner(record.by, record.sig_kid), { state: entry.state, served: true });
    } catch (error) {
      if (error instanceof RosterError) return this.tamper(entry, conversationId, 'chain', error.detail || error.code);
      if (error instanceof IdentityPendingError) {
        // Signed under an identity change the person has not accepted: neither genuine
        // nor tampered yet. Sending waits; verified again once trust changes.
        entry.waiting = { userId: error.userId, username: error.username ?? null };
        this.changed(conversationId);
        return entry;
      }
      throw error;
    }
    entry.waiting = null;
    entry.state = state;
    for (const record of records) {
      entry.events.push({ n: record.n, op: record.op, by: record.by, subjects: [...record.subjects], title: record.title, created: record.created ?? null, hash: record.hash });
    }
    await this.learnSigners(records);
    await this.save(conversationId, entry);
    this.changed(conversationId);
    return entry;
  }

  /** Usernames of record makers not seen in any member list (their key's owner). */
  async learnSigners(records) {
    const unknown = new Map();
    for (const record of records) if (!this.names.has(record.by)) unknown.set(record.by, record.sig_kid);
    await Promise.all([...unknown].map(async ([userId, sigKid]) => {
      try {
        const { user } = await api.keyOwner(sigKid);
        if (user?.id === userId) this.learnNames([user]);
      } catch {
        /* shown as "user <id>" */
      }
    }));
  }

  learnNames(users) {
    let changed = false;
    for (const user of users) {
      if (Number.isSafeInteger(user?.id) && typeof user.username === 'string' && this.names.get(user.id) !== user.username) {
        this.names.set(user.id, user.username);
        changed = true;
      }
    }
    if (changed) {
      clearTimeout(this.namesTimer);
      this.namesTimer = setTimeout(() => this.kv.set(this.namesKey, Object.fromEntries(this.names)).catch(() => {}), 500);
    }
  }

  async tamper(entry, conversationId, code, detail = '') {
    if (entry.tampered) return entry;
    const base = TAMPER_TEXT[code];
    const text = code === 'chain' ? `${base}${detail ? `: ${detail}` : ''}.` : detail ? `${base.slice(0, -1)} (${detail}).` : base;
    entry.tampered = { code, text, at: new Date().toISOString() };
    await this.save(conversationId, entry);
    this.changed(conversationId);
    return entry;
  }

  /**
   * Check the `head` a message names (it opened and its signature verified): `ok` when
   * its sender was a member at that verified head, `before_roster` for `""` in a group
   * (sent before its member list was signed), `no_roster` for a head in a group this
   * device knows nothing of. A head the chain cannot show (after fetching the newest
   * records), a sender who was not a member, or a head in a direct conversation marks
   * the conversation tampered and answers `unknown_head`, `sender_not_member` or
   * `bad_head`.
   * A head past a change that waits on an unaccepted identity answers `waiting`.
   * @returns {Promise<'ok'|'before_roster'|'no_roster'|'waiting'|'unknown_head'|'sender_not_member'|'bad_head'>}
   */
  async checkHead(conv, senderId, head) {
    if (conv.kind === 'direct') {
      if (head === '') return 'ok';
      const entry = this.entries.get(conv.id);
      if (entry) await this.serial(conv.id, () => this.tamper(entry, conv.id, 'direct_roster'));
      return 'bad_head';
    }
    if (head === '') return 'before_roster';
    await this.settled(conv.id); // checks already under way finish first
    let entry = this.entries.get(conv.id);
    if (!entry?.tampered && !entry?.state?.heads.has(head)) {
      if (entry?.gid) await this.refresh(conv);
      else await this.reobserve(conv.id); // the group may just have been signed (§8, v1 groups)
      entry = this.entries.get(conv.id);
    }
    if (!entry) return 'no_roster';
    if (entry.waiting && !entry.state?.heads.has(head)) return 'waiting';
    if (!entry.state?.heads.has(head)) {
      await this.serial(conv.id, () => this.tamper(entry, conv.id, 'unknown_head'));
      return 'unknown_head';
    }
    if (!entry.state.memberAt(senderId, head)) {
      await this.serial(conv.id, () => this.tamper(entry, conv.id, 'sender_not_member'));
      return 'sender_not_member';
    }
    return 'ok';
  }

  /** Check this conversation again from a fresh conversation list. */
  async reobserve(conversationId) {
    const { conversations } = await api.conversations();
    const data = conversations.find((c) => c.id === conversationId);
    if (data) await this.observe(data);
  }

  /**
   * Whom a new message to `conv` is sealed for and under which head: `{usernames, head,
   * unsigned}` (usernames include mine). Throws NotSendable when nothing may be sent:
   * tampered, not a member by the verified roster, or a member with no known name.
   * `unsigned` is true for a group from before signed rosters (the server's list).
   */
  targets(conv) {
    const entry = this.entries.get(conv.id);
    if (entry?.tampered) throw new NotSendable(`Not sent: ${entry.tampered.text}`, 'tampered');
    if (entry?.waiting) throw new NotSendable(`Not sent: ${waitingText(entry.waiting)}`, 'waiting');
    if (conv.kind === 'direct') {
      if (!entry?.pair) throw new NotSendable('Not sent: the members of this conversation are not checked yet.', 'unchecked');
      return { usernames: entry.pair.map((id) => this.nameFor(conv, id)), head: '', unsigned: false };
    }
    if (!entry?.state) {
      if (entry?.gid || conv.gid) throw new NotSendable('Not sent: the member list of this group is not verified yet.', 'unchecked');
      if (!conv.members.some((m) => m.id === this.me.id)) throw new NotSendable('You are no longer a member of this group.', 'left');
      return { usernames: conv.members.map((m) => m.username), head: '', unsigned: true };
    }
    if (!entry.state.isMember(this.me.id)) throw new NotSendable('You are no longer a member of this group.', 'left');
    return { usernames: [...entry.state.members].map((id) => this.nameFor(conv, id)), head: entry.state.head, unsigned: false };
  }

  nameFor(conv, userId) {
    const name = conv.members.find((m) => m.id === userId)?.username ?? this.names.get(userId);
    if (!name) throw new NotSendable('Not sent: a member of this conversation is unknown to this device.', 'unchecked');
    return name;
  }

  /** Whether this device should sign record 0 of a group from before signed rosters (its owner, §8). */
  needsBootstrap(conv) {
    const entry = this.entries.get(conv.id);
    return conv.kind === 'group' && conv.gid == null && !entry?.gid && !entry?.state && !entry?.tampered
      && conv.owner?.id === this.me.id && conv.members.some((m) => m.id === this.me.id);
  }

  async save(conversationId, entry) {
    await this.kv.set(this.key(conversationId), toSaved(entry));
  }

  changed(conversationId) {
    this.dispatchEvent(new CustomEvent('change', { detail: conversationId }));
  }
}

/** Why a group waits: a member-list change signed under an identity not accepted yet. */
export function waitingText(waiting) {
  const who = waiting.username ?? `user ${waiting.userId}`;
  return `${who}’s new identity signed a change to this group’s members; accept or verify it first.`;
}

function toSaved(entry) {
  return {
    kind: entry.kind,
    gid: entry.gid,
    state: entry.state ? entry.state.toJson() : null,
    pair: entry.pair,
    events: entry.events,
    tampered: entry.tampered,
  };
}

function fromSaved(saved) {
  return {
    kind: saved.kind,
    gid: saved.gid ?? null,
    state: saved.state ? RosterState.fromJson(saved.state) : null,
    pair: saved.pair ?? null,
    events: Array.isArray(saved.events) ? saved.events : [],
    tampered: saved.tampered ?? null,
  };
}
