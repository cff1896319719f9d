/**
 * Group changes as signed roster records (PROTOCOL §8): create (a fresh `gid` and record
 * 0), add, remove, leave and retitle, each signed by this device on the verified head;
 * and record 0 for a group from before signed rosters, made by its owner's device.
 *
 * A record the server refuses with `stale_roster` (someone changed the group first) is
 * dropped; the roster is fetched and verified, the change is checked against the new
 * state and signed again on the new head (a few times at most). A change the rules do
 * not allow is refused here, with the reason, before anything is signed.
 * @module groups
 */

import { api, ApiError } from './api.js';
import { GENESIS, RosterError, makeRecord } from './roster.js';

const TRIES = 4;

/** A group change that cannot be made; `message` says why, plainly. */
export class GroupError extends Error {
  constructor(message) {
    super(message);
    this.name = 'GroupError';
  }
}

export class Groups {
  /**
   * @param {object} deps
   * @param {{id: number, username: string}} deps.me
   * @param {import('./protocol.js').DeviceKeys} deps.keys
   * @param {import('./rosters.js').RosterStore} deps.rosters
   * @param {(data: object) => Promise<object>} deps.onConversation takes the server's answer; resolves the conversation
   */
  constructor({ me, keys, rosters, onConversation }) {
    Object.assign(this, { me, keys, rosters, onConversation });
  }

  /**
   * A new group of this user and `users` ({id, username}) under `title` (or none).
   * @returns {Promise<object>} the conversation
   */
  async create(title, users) {
    const gid = crypto.randomUUID();
    const record = await makeRecord(this.keys, {
      gid,
      n: 0,
      prev: GENESIS,
      op: 'create',
      subjects: [this.me.id, ...users.map((u) => u.id)],
      by: this.me.id,
      title: title || null,
    });
    this.rosters.learnNames(users);
    const { conversation } = await call(() => api.createGroup({ gid, title: title || null, roster: record }));
    return this.onConversation(conversation);
  }

  /** Add `user` ({id, username}); only the owner may. */
  add(conv, user) {
    this.rosters.learnNames([user]);
    return this.change(conv, (state) => {
      if (state.isMember(user.id)) throw new GroupError(`${user.username} is already a member.`);
      return { op: 'add', subjects: [user.id] };
    });
  }

  /** Remove the member `userId`; only the owner may. */
  remove(conv, userId) {
    return this.change(conv, (state) => {
      if (!state.isMember(userId)) throw new GroupError('They are no longer a member.');
      return { op: 'remove', subjects: [userId] };
    });
  }

  /** Leave the group. */
  leave(conv) {
    return this.change(conv, (state) => {
      if (!state.isMember(this.me.id)) throw new GroupError('You are no longer a member.');
      return { op: 'leave', subjects: [this.me.id] };
    });
  }

  /** Give the group a new title. */
  retitle(conv, title) {
    const text = title.trim();
    if (!text) return Promise.reject(new GroupError('A title cannot be empty.'));
    return this.change(conv, (state) => {
      if (state.title === text) throw new GroupError('That is the title already.');
      return { op: 'title', subjects: [], title: text };
    });
  }

  /**
   * Sign one change on the newest verified head and post it; on `stale_roster`, verify
   * the new records and try again. `build(state)` returns {op, subjects, title?} or
   * throws GroupError. Resolves the updated conversation.
   */
  async change(conv, build) {
    for (let attempt = 1; ; attempt += 1) {
      await this.rosters.refresh(conv);
      const tampered = this.rosters.tampered(conv.id);
      if (tampered) throw new GroupError(`This group cannot be changed: ${tampered.text}`);
      const state = this.rosters.state(conv.id);
      const gid = this.rosters.entry(conv.id)?.gid;
      if (!state || !gid) throw new GroupError('This group’s member list is not signed yet; its owner’s device signs it when she next opens it.');
      const spec = build(state);
      const draft = { n: state.n + 1, prev: state.head, op: spec.op, subjects: [...spec.subjects].sort((a, b) => a - b), by: this.me.id, title: spec.title ?? null };
      try {
        state.check(draft);
      } catch (error) {
        if (error instanceof RosterError) throw new GroupError(ruleText(error, spec.op));
        throw error;
      }
      const record = await makeRecord(this.keys, { gid, ...draft });
      try {
        const { conversation } = await api.postRecord(conv.id, { record });
        return await this.onConversation(conversation);
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== 'stale_roster' || attempt >= TRIES) throw asGroupError(error);
        await this.rosters.refresh(conv, { head: error.body?.error?.head ?? undefined });
      }
    }
  }

  /**
   * Record 0 for a group from before signed rosters, by its owner's device: a fresh gid
   * and `create` naming exactly the current members (§8). Another device of the owner
   * doing it first is fine (`stale_roster`): the conversation is checked again.
   */
  async bootstrap(conv) {
    const gid = crypto.randomUUID();
    const record = await makeRecord(this.keys, {
      gid,
      n: 0,
      prev: GENESIS,
      op: 'create',
      subjects: conv.members.map((m) => m.id),
      by: this.me.id,
      title: conv.title || null,
    });
    try {
      const { conversation } = await api.postRecord(conv.id, { gid, record });
      return await this.onConversation(conversation);
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'stale_roster' || error.code === 'bad_request')) return null;
      throw error;
    }
  }
}

async function call(fn) {
  try {
    return await fn();
  } catch (error) {
    throw asGroupError(error);
  }
}

function asGroupError(error) {
  if (error instanceof GroupError) return error;
  if (error instanceof ApiError) {
    if (error.code === 'forbidden') return new GroupError('You may not make this change (only the owner adds and removes members).');
    if (error.code === 'stale_roster') return new GroupError('The group kept changing while this change was made; try again.');
    return new GroupError(error.detail || error.code);
  }
  return error;
}

function ruleText(error, op) {
  if (error.code === 'forbidden') {
    return op === 'add' || op === 'remove' ? 'Only the group’s owner adds and removes members.' : 'Only a member can do this.';
  }
  return `This change is not allowed: ${error.detail}.`;
}
