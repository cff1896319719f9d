/**
 * The conversation list of ChatApp: fetching it and taking conversations in, checking
 * each against its verified roster (rosters.js), group changes (groups.js), whether and
 * why sending is paused (`sendState`, `noticesFor`), and looking at members' devices.
 *
 * Methods of ChatApp (chat.js mixes them into its prototype): `this` is the app.
 * @module chat-conversations
 */

import { api, ApiError } from './api.js';
import { NotSendable, waitingText } from './rosters.js';

export class ChatConversations {
  /**
   * Fetch the conversation list and take each conversation in; a conversation whose
   * `last_seq` fell below a message shown before this request rolls back.
   */
  async refreshConversations({ first = false } = {}) {
    const shown = new Map([...(this.conversations?.values() ?? [])].map((c) => [c.id, Math.max(0, ...c.messages.keys())]));
    const { conversations } = await api.conversations();
    if (first) await this.rosters.load(conversations.map((c) => c.id));
    const checks = [];
    for (const data of conversations) {
      const { conv } = this.conversations.upsert(data, { fromList: true });
      if (shown.has(conv.id) && data.last_seq < shown.get(conv.id)) this.timeline.rollback(conv, data.last_seq + 1);
      checks.push(this.checkRoster(conv, data));
      this.rich.recountUnread(conv).catch(() => {}); // reactions, edits and deletes are not unread (rich.js)
    }
    if (first) await Promise.allSettled(checks);
    this.emit('list');
  }

  /** Check a conversation object against the verified roster; then its state and views. */
  async checkRoster(conv, data) {
    try {
      await this.rosters.observe(data);
    } catch (error) {
      if (!(error instanceof ApiError)) console.error('roster check failed', error?.name);
      return;
    }
    this.afterRosterCheck(conv);
    if (this.rosters.needsBootstrap(conv)) {
      this.groups.bootstrap(conv).catch(() => {});
    }
  }

  afterRosterCheck(conv) {
    this.conversations.refreshLeft(conv);
    if (!this.rosters.tampered(conv.id)) this.sender.retryBlocked(conv.id);
    this.emitSoon('conversation', conv.id);
    this.emitSoon('list', null);
  }

  onRosterChange(conversationId) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    this.afterRosterCheck(conv);
    this.emitSoon('notices', conv.id);
    this.emitSoon('messages', conv.id);
  }

  /** The server's answer to a change made here: taken in like a `conversation` frame. */
  async takeAnswer(data) {
    const { conv } = this.conversations.upsert(data);
    await this.checkRoster(conv, data);
    this.emit('list');
    this.observeMembers(conv);
    return conv;
  }

  /** Conversations, newest activity first. */
  list() {
    return this.conversations.list();
  }

  get(id) {
    return this.conversations.get(id);
  }

  titleOf(conv) {
    return this.conversations.titleOf(conv);
  }

  peerOf(conv) {
    return this.conversations.peerOf(conv);
  }

  membersOf(conv) {
    return this.conversations.membersOf(conv);
  }

  ownerOf(conv) {
    return this.conversations.ownerOf(conv);
  }

  nameOf(conv, userId) {
    return this.conversations.nameOf(conv, userId);
  }

  departure(conv) {
    return this.conversations.departure(conv);
  }

  async startDirect(username) {
    const { conversation } = await api.createConversation([username]);
    return this.takeAnswer(conversation);
  }

  /** A new group with `users` ({id, username}). */
  createGroup(title, users) {
    return this.groups.create(title, users);
  }

  addMember(conv, user) {
    return this.groups.add(conv, user);
  }

  removeMember(conv, userId) {
    return this.groups.remove(conv, userId);
  }

  leave(conv) {
    return this.groups.leave(conv);
  }

  retitle(conv, title) {
    return this.groups.retitle(conv, title);
  }

  /**
   * Whether this device may send to `conv` now: `{ok: true}` or `{ok: false, reason}`
   * (not a member, tampered, a member's keys need review).
   */
  sendState(conv) {
    if (conv.left) return { ok: false, kind: 'left', reason: 'You are no longer a member' };
    try {
      this.rosters.targets(conv);
    } catch (error) {
      if (error instanceof NotSendable && error.kind !== 'unchecked') {
        return { ok: false, kind: error.kind, reason: error.kind === 'tampered' ? 'Sending blocked (see above)' : error.message };
      }
    }
    if (this.noticesFor(conv).some((n) => n.blocking)) return { ok: false, kind: 'keys', reason: 'Sending paused (see above)' };
    return { ok: true };
  }

  /**
   * The notices the conversation view shows above the messages, most serious first:
   * tampered (this lane), rollback, an unsigned group member list, and the identity
   * lane's through `trust.noticesFor(usernames)`. Each `{kind, level?: 'danger' | 'warn',
   * title?, text, username?, blocking?, actions: [{label, run | href, danger?, confirm?}]}`;
   * a blocking notice stops sending to the conversation.
   */
  noticesFor(conv) {
    const notices = [];
    const tampered = this.rosters.tampered(conv.id);
    if (tampered) {
      notices.push({
        kind: 'tampered',
        level: 'danger',
        blocking: true,
        title: 'This conversation may have been tampered with. Nothing is sent to it.',
        text: `${tampered.text} The server may be trying to add a reader you cannot see, or to change what this conversation shows.`,
        actions: [],
      });
    }
    const waiting = this.rosters.waiting(conv.id);
    if (waiting && !tampered) {
      notices.push({
        kind: 'roster_waiting',
        level: 'warn',
        blocking: true,
        title: 'A change to this group’s members waits for an identity you have not accepted.',
        text: `${waitingText(waiting)} Until then nothing is sent to this group.`,
        actions: [],
      });
    }
    if (conv.rollback) {
      notices.push({
        kind: 'rollback',
        level: 'warn',
        title: 'The server’s history of this conversation changed.',
        text: 'Messages this device showed before are missing or in another place on the server. The conversation was loaded again; what it shows now is what the server holds.',
        actions: [{ label: 'Dismiss', run: () => { conv.rollback = null; this.emit('notices', conv.id); } }],
      });
    }
    if (conv.kind === 'group' && !conv.left && !tampered && !this.rosters.state(conv.id) && !conv.gid) {
      notices.push({
        kind: 'unsigned',
        level: 'warn',
        title: 'This group’s member list is not signed yet.',
        text: 'It was made before member lists were signed. Its owner’s device signs it when she next opens the chat; until then the server could add someone without anyone seeing it.',
        actions: [],
      });
    }
    const usernames = this.conversations.membersOf(conv).map((m) => m.username);
    if (!usernames.includes(this.me.username)) usernames.push(this.me.username);
    notices.push(...this.trust.noticesFor(usernames));
    return notices;
  }

  /** Fetch every conversation member's devices once, to notice changes since last time. */
  async observeAllDevices() {
    const names = new Set([this.me.username]);
    for (const conv of this.conversations.values()) if (!conv.left) for (const m of conv.members) names.add(m.username);
    await Promise.all([...names].map((name) => this.observeUser(name)));
  }

  observeMembers(conv) {
    for (const m of conv.members) this.observeUser(m.username);
  }

  async observeUser(username) {
    if (this.env.directory) return; // tests give a directory of their own
    try {
      await this.loadUser(username);
      this.emit('devices', username);
    } catch {
      /* offline: tried again on the next change */
    }
  }
}
