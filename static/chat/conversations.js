/**
 * The conversation objects the app shows: the server's fields (§4) merged with the
 * timeline's state, and what the views read of them — the title, the members and the
 * owner as the verified roster says (rosters.js), whether this user is still a member
 * and, if not, who removed her.
 * @module conversations
 */

import { requestFields } from './requests.js';
import { Timeline } from './timeline.js';

export class Conversations {
  /** @param {{me: {id: number, username: string}, rosters: import('./rosters.js').RosterStore}} deps */
  constructor({ me, rosters }) {
    this.me = me;
    this.rosters = rosters;
    /** @type {Map<number, object>} */
    this.map = new Map();
  }

  get(id) {
    return this.map.get(id);
  }

  has(id) {
    return this.map.has(id);
  }

  values() {
    return this.map.values();
  }

  /**
   * Merge a conversation object from the server. A snapshot of an older roster head
   * than one already taken (frames can arrive out of order) leaves the membership
   * fields as they are. Resolves {conv, isNew}.
   */
  upsert(data, { fromList = false } = {}) {
    let conv = this.map.get(data.id);
    const isNew = !conv;
    if (!conv) {
      conv = {
        id: data.id,
        ...Timeline.fields(data),
        readBy: new Map(),
        typing: new Map(),
        unread: data.unread ?? 0,
        // the seq up to which the server's `unread` counted (a list's last_seq), and the
        // highest seq counted here since (chat-timeline.js onIncoming): a message the
        // server already counted is not counted again when its frame is filed
        unreadThrough: 'unread' in data ? data.last_seq ?? 0 : 0,
        countedLive: 0,
        read_up_to: data.read_up_to ?? 0,
        last_seq: data.last_seq ?? 0,
        last_activity: data.last_activity ?? data.created,
      };
      this.map.set(data.id, conv);
    } else if (fromList) {
      // a list fetched before a message counted here was stored would drop that count
      if ((data.last_seq ?? 0) >= Math.max(conv.unreadThrough, conv.countedLive)) {
        conv.unread = data.unread ?? conv.unread;
        conv.unreadThrough = data.last_seq ?? 0;
      }
      conv.read_up_to = Math.max(conv.read_up_to, data.read_up_to ?? 0);
    }
    const older = conv.roster_head && data.roster_head && data.roster_head.n < conv.roster_head.n;
    if (!older) {
      Object.assign(conv, {
        kind: data.kind,
        title: data.title ?? null,
        members: Array.isArray(data.members) ? data.members : [],
        owner: data.owner ?? null,
        gid: data.gid ?? null,
        roster_head: data.roster_head ?? null,
      });
    }
    conv.created = data.created;
    if ('request' in data) Object.assign(conv, requestFields(data)); // §6 (requests.js)
    for (const [user, upTo] of Object.entries(data.read_marks ?? {})) {
      const member = conv.members.find((m) => String(m.id) === user);
      if (member && member.id !== this.me.id) conv.readBy.set(member.username, Math.max(conv.readBy.get(member.username) ?? 0, upTo));
    }
    if (data.last_seq > conv.last_seq) conv.last_seq = data.last_seq;
    if (data.last_activity && (!conv.last_activity || data.last_activity > conv.last_activity)) conv.last_activity = data.last_activity;
    this.refreshLeft(conv);
    return { conv, isNew };
  }

  /** Set `conv.left` from the verified roster (or the server's list before there is one). */
  refreshLeft(conv) {
    const verified = this.rosters.isMember(conv.id, this.me.id);
    conv.left = verified === null ? !conv.members.some((m) => m.id === this.me.id) : !verified;
  }

  /** Conversations, newest activity first. */
  list() {
    return [...this.map.values()].sort((a, b) => (b.last_activity ?? '').localeCompare(a.last_activity ?? '') || b.id - a.id);
  }

  /** `{id, username}` of the members: the verified roster's for a group that has one. */
  membersOf(conv) {
    const state = conv.kind === 'group' ? this.rosters.state(conv.id) : null;
    if (!state) return conv.members;
    return [...state.members]
      .map((id) => ({ id, username: this.nameOf(conv, id) }))
      .sort((a, b) => a.username.localeCompare(b.username));
  }

  /** The owner's user id: the verified roster's, else the server's. */
  ownerOf(conv) {
    const state = conv.kind === 'group' ? this.rosters.state(conv.id) : null;
    return state ? state.owner : conv.owner?.id ?? null;
  }

  /** A username for a user id, as far as this device has seen one. */
  nameOf(conv, userId) {
    if (userId === this.me.id) return this.me.username;
    return conv.members.find((m) => m.id === userId)?.username ?? this.rosters.nameOf(userId) ?? `user ${userId}`;
  }

  /** A display name: the group's (verified) title, or the other member of a direct chat. */
  titleOf(conv) {
    if (conv.kind === 'group') {
      const state = this.rosters.state(conv.id);
      const title = state ? state.title : conv.title;
      return title || this.membersOf(conv).map((m) => m.username).filter((n) => n !== this.me.username).join(', ') || 'Group';
    }
    return this.peerOf(conv) ?? conv.title ?? 'Direct chat';
  }

  /** The other person of a direct conversation: the pinned one, whatever the server lists now. */
  peerOf(conv) {
    if (conv.kind !== 'direct') return null;
    const pair = this.rosters.entry(conv.id)?.pair;
    const otherId = pair ? pair.find((id) => id !== this.me.id) : conv.members.find((m) => m.id !== this.me.id)?.id;
    return otherId === undefined ? null : this.nameOf(conv, otherId);
  }

  /**
   * For a group this user is no longer in, how she left by the verified roster:
   * `{op: 'remove', by}` or `{op: 'leave'}`; null when unknown.
   */
  departure(conv) {
    const events = this.rosters.events(conv.id);
    for (let i = events.length - 1; i >= 0; i -= 1) {
      const event = events[i];
      if ((event.op === 'remove' || event.op === 'leave') && event.subjects.includes(this.me.id)) {
        return { op: event.op, by: event.op === 'remove' ? this.nameOf(conv, event.by) : this.me.username };
      }
      if (event.op === 'add' && event.subjects.includes(this.me.id)) return null;
    }
    return null;
  }
}
