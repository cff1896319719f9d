/**
 * The chat's state and behaviour, without DOM: it wires the parts together and is what
 * the views read. Conversations (conversations.js) and who is in them (rosters.js),
 * what each shows (timeline.js, judged by ledgers.js), sending (sender.js with
 * counters.js and outbox.js), files (uploads.js, downloads.js), group changes (groups.js),
 * frames (router.js), and the small things: presence, typing, read marks, notifications.
 *
 * The views listen for `change` events (detail {what, id}): `list`, `open`, `messages`,
 * `older`, `conversation`, `notices`, `typing`, `presence`, `connection`, `trust`,
 * `devices`, `fatal`, `navigate`.
 * @module chat
 */

import { api, ApiError } from './api.js';
import { Conversations } from './conversations.js';
import { Counters } from './counters.js';
import { Directory } from './directory.js';
import { Downloads } from './downloads.js';
import { Groups } from './groups.js';
import { LedgerStore } from './ledgers.js';
import { Messenger } from './messages.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { markRead, readIfSeen } from './read-marks.js';
import { takeDeclined } from './requests.js';
import { RichMessages } from './rich.js';
import { routeFrame } from './router.js';
import { NotSendable, RosterStore, waitingText } from './rosters.js';
import { LocalSearch } from './search.js';
import { Sender } from './sender.js';
import { ChatSocket } from './socket.js';
import { kv as browserKv } from './store.js';
import { Timeline } from './timeline.js';
import { Trust } from './trust.js';
import { Uploads } from './uploads.js';

const TYPING_SHOWN = 6000;
const TYPING_EVERY = 3000;
const RESEND_CHECK = 3000;

export class ChatApp extends EventTarget {
  /**
   * @param {object} options
   * @param {{id: number, username: string}} options.me
   * @param {number} options.deviceId
   * @param {import('./protocol.js').DeviceKeys} options.keys
   * @param {object} [options.env] parts to use instead of the browser's (node tests): `kv`,
   *   `socket`, `directory`, `trust`, `notifier`, `locks` (a Web Locks stand-in), `visible`
   *   (() => whether the page is seen)
   */
  constructor({ me, deviceId, keys, env = {} }) {
    super();
    this.me = me;
    this.deviceId = deviceId;
    this.keys = keys;
    this.env = env;
    this.online = new Set();
    this.openId = null;
    this.connection = { state: 'idle' };
    this.lastTypingSent = 0;
    this.syncing = new Set();
  }

  emit(what, id = null) {
    if (what === 'messages' || what === 'older') this.search?.onTimeline(what, id);
    this.dispatchEvent(new CustomEvent('change', { detail: { what, id } }));
  }

  get visible() {
    if (this.env.visible) return this.env.visible();
    return typeof document !== 'undefined' && document.visibilityState === 'visible';
  }

  async start() {
    const { me, deviceId, keys, env } = this;
    const kv = env.kv ?? browserKv;
    this.trust = env.trust ?? (await this.makeTrust());
    this.directory = env.directory ?? this.makeDirectory();
    this.rosters = new RosterStore({ me, directory: this.directory, kv });
    this.ledgers = new LedgerStore(me.id, kv);
    this.conversations = new Conversations({ me, rosters: this.rosters });
    this.messenger = new Messenger({ me, keys, directory: this.directory });
    this.timeline = new Timeline({
      me,
      messenger: this.messenger,
      rosters: this.rosters,
      ledgers: this.ledgers,
      requestSync: (convs) => this.requestSync(convs),
      emit: (what, id) => {
        if (what === 'rollback') this.search?.onTimeline(what, id);
        this.emit(what === 'rollback' ? 'notices' : what, id);
      },
      onIncoming: (conv, item) => this.onIncoming(conv, item),
      onOwnFiled: (item) => this.sender?.settled(item.client_msg_id),
      onAdvanced: (conv) => this.readIfSeen(conv),
    });
    this.outbox = await new Outbox(deviceId, kv).load();
    this.sender = new Sender({
      me,
      deviceId,
      messenger: this.messenger,
      directory: this.directory,
      rosters: this.rosters,
      counters: new Counters(deviceId, kv),
      outbox: this.outbox,
      transport: { send: (frame) => Boolean(this.socket?.send(frame)), isOnline: () => this.connection.state === 'online' },
      conversation: (id) => this.conversations.get(id),
      onSent: (conv, sent) => this.timeline.fileOwn(conv, { ...sent, sigKid: keys.sigKid }),
      onFiled: (conv) => this.timeline.advanceCursor(conv),
      ...(env.locks ? { locks: env.locks } : {}),
    });
    this.rich = new RichMessages(this);
    this.uploads = new Uploads({ send: (conv, payload, blobs) => this.sender.sendPayload(conv, payload, { blobs }) });
    this.uploads.addEventListener('change', (event) => this.emitSoon('messages', event.detail));
    this.downloads = new Downloads();
    this.groups = new Groups({ me, keys, rosters: this.rosters, onConversation: (data) => this.takeAnswer(data) });
    this.notifier = env.notifier ?? (await new Notifier(me.id).load());
    this.trust.addEventListener?.('change', () => {
      this.emit('trust');
      this.rosters.retryWaiting([...this.conversations.values()]).then(() => this.sender.retryBlocked());
    });
    this.rosters.addEventListener('change', (event) => this.onRosterChange(event.detail));
    this.sender.addEventListener('change', (event) => this.emitSoon('messages', event.detail));
    await this.refreshConversations({ first: true });
    await this.sender.load();
    this.search = new LocalSearch({ app: this, kv, ...(env.locks ? { locks: env.locks } : {}) });
    this.searchReady = this.search.start().catch((error) => console.error('the search index did not open', error?.name));
    this.socket = env.socket ?? new ChatSocket(deviceId);
    this.socket.addEventListener('state', (e) => {
      this.connection = e.detail;
      if (e.detail.state !== 'online') this.online.clear();
      this.emit('connection');
    });
    this.socket.addEventListener('open', () => this.onOpen());
    this.socket.addEventListener('frame', (e) => {
      Promise.resolve(routeFrame(this, e.detail)).catch((err) => console.error('frame handling failed', err?.name));
    });
    this.socket.addEventListener('fatal', (e) => {
      this.fatal = e.detail;
      this.emit('fatal');
    });
    this.socket.start();
    this.resender = setInterval(() => this.sender.resendStale(), RESEND_CHECK);
    if (typeof document !== 'undefined' && !env.visible) {
      document.addEventListener('visibilitychange', () => this.markRead());
      window.addEventListener('focus', () => this.markRead());
    }
    this.observeAllDevices();
  }

  stop() {
    clearInterval(this.resender);
    this.socket?.stop();
  }

  // --- the identity lane's parts (trust.js, directory.js). ChatApp uses them through the
  // seam (recipientsOf, senderKey, recordSigner, trust.noticesFor) and these methods. -----

  /** Whom this device trusts (§7.4), its own identity pinned. */
  async makeTrust() {
    const trust = await new Trust(this.me.id, { revokeDevice: (id) => this.revokeOwnDevice(id) }).load();
    if (this.keys.idKid) await trust.pinSelf(this.me, this.keys.idKid);
    return trust;
  }

  /** The key directory: recipientsOf, senderKey, recordSigner (docs/browser.md, the seam). */
  makeDirectory() {
    return new Directory({ me: this.me, trust: this.trust });
  }

  /** A user's devices or identity changed (`devices_changed`): look again. */
  async refreshUser(username) {
    await this.directory.refresh(username);
  }

  /** Look at a user once (identity and devices; trust notes what changed). */
  async loadUser(username) {
    await this.directory.load(username);
  }

  /** Whether the person verified the other member of a direct conversation (safety number). */
  peerVerified(conv) {
    const peer = this.membersOf(conv).find((m) => m.id !== this.me.id);
    return conv.kind === 'direct' && Boolean(peer) && this.trust.isVerified(peer.id);
  }

  /** Revoke one of my devices ("Revoke it"), then look at my device list again. */
  async revokeOwnDevice(id) {
    await api.revokeDevice(id);
    await this.directory.refresh(this.me.username);
  }

  /** One `change` event per (what, id) per task: bursts re-render once. */
  emitSoon(what, id) {
    const key = `${what}|${id}`;
    this.soon ??= new Set();
    if (this.soon.has(key)) return;
    this.soon.add(key);
    queueMicrotask(() => {
      this.soon.delete(key);
      this.emit(what, id);
    });
  }

  // --- conversations ----------------------------------------------------------------------

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

  // --- opening and history --------------------------------------------------------------

  async open(id) {
    this.openId = id;
    const conv = this.get(id);
    this.emit('open', id);
    if (!conv) return;
    if (!conv.loaded) await this.timeline.loadNewest(conv);
    this.markRead();
    this.observeMembers(conv);
  }

  close() {
    this.openId = null;
    this.emit('open', null);
  }

  loadOlder(conv) {
    return this.timeline.loadOlder(conv);
  }

  /** What the conversation shows: `{entries, pending, uploads}` (Timeline.entries, Sender.pendingIn, Uploads). */
  items(conv) {
    return { entries: this.timeline.entries(conv), pending: this.sender.pendingIn(conv.id), uploads: this.uploads.inConversation(conv.id) };
  }

  /** The newest shown message of a conversation (for the list's preview), or null. */
  newest(conv) {
    return this.timeline.newestShown(conv);
  }

  /** "sent" or "read" for an own stored message. */
  deliveryOf(conv, item) {
    const others = this.membersOf(conv).filter((m) => m.id !== this.me.id);
    if (others.length && others.every((m) => (conv.readBy.get(m.username) ?? 0) >= item.seq)) return 'read';
    return 'sent';
  }

  onIncoming(conv, item) {
    // their message is here: no longer typing it (shown at once, not when the entry expires)
    if (conv.typing.delete(item.sender)) this.emit('typing', conv.id);
    if (item.seq <= conv.read_up_to) return;
    if (this.openId === conv.id && this.visible) {
      queueMicrotask(() => this.readIfSeen(conv));
    } else {
      conv.unread += 1;
      this.notifier?.message(item.sender, () => this.emit('navigate', conv.id));
    }
  }

  /** Tell the server the open, seen conversation is read up to its cursor (read-marks.js). */
  markRead() {
    markRead(this);
  }

  readIfSeen(conv) {
    readIfSeen(this, conv);
  }

  // --- sending ----------------------------------------------------------------------------

  /** Encrypt and queue a text; it shows as pending at once. */
  async sendText(conv, text) {
    conv.last_activity = new Date().toISOString();
    this.emitSoon('list', null);
    this.sender.sendText(conv, text);
  }

  /** Encrypt, upload and send a file (uploads.js); throws a plain Error for one over 100 MiB. */
  sendFile(conv, file, options = {}) {
    conv.last_activity = new Date().toISOString();
    this.emitSoon('list', null);
    return this.uploads.start(conv, file, options);
  }

  retryFailed(conv, clientMsgId) {
    return this.sender.retry(clientMsgId);
  }

  discardPending(conv, clientMsgId) {
    this.sender.discard(clientMsgId);
  }

  typing(conv) {
    if (Date.now() - this.lastTypingSent < TYPING_EVERY || conv.left) return;
    this.lastTypingSent = Date.now();
    this.socket?.send({ type: 'typing', conversation: conv.id });
  }

  /** Users typing in a conversation now (not me). */
  typingIn(conv) {
    const now = Date.now();
    return [...conv.typing.entries()].filter(([, at]) => now - at < TYPING_SHOWN).map(([user]) => user);
  }

  // --- the socket -----------------------------------------------------------------------

  onOpen() {
    this.requestSync([...this.conversations.values()], { all: true });
    // A server restored from a backup while we were away answers the sync with nothing:
    // the list's last_seq below what we showed is how the rollback shows (PROTOCOL §9).
    this.refreshConversations().catch(() => {});
    this.sender.onOpen();
  }

  requestSync(convs, { all = false } = {}) {
    const cursors = {};
    for (const conv of convs) {
      if (!all && this.syncing.has(conv.id)) continue;
      // own acknowledged messages still being filed are no gap (sender.onFiled asks again)
      if (!all && this.sender?.filingIn(conv.id)) continue;
      if (conv.left && !all) continue;
      cursors[String(conv.id)] = conv.cursor;
      this.syncing.add(conv.id);
    }
    if (Object.keys(cursors).length && !this.socket?.send({ type: 'sync', cursors })) {
      for (const id of Object.keys(cursors)) this.syncing.delete(Number(id));
    }
  }

  async onMessage(message) {
    if (!message || !Number.isSafeInteger(message.conversation)) return;
    let conv = this.get(message.conversation);
    if (!conv) {
      await this.refreshConversations();
      conv = this.get(message.conversation);
      if (!conv) return;
    }
    if (message.seq > conv.last_seq) conv.last_seq = message.seq;
    // this tab's own message still waiting for its ack (which comes first and files it)
    if (message.sender_device === this.deviceId && (this.sender.items.has(message.client_msg_id) || this.sender.filing.has(message.client_msg_id))) return;
    await this.timeline.ingest(conv, [message], { live: true });
    this.emitSoon('messages', conv.id);
    this.emitSoon('list', null);
  }

  onSynced(frame) {
    const again = [];
    for (const [id, cursor] of Object.entries(frame.cursors ?? {})) {
      const conv = this.get(Number(id));
      this.syncing.delete(Number(id));
      if (!conv) continue;
      // The server sent everything up to `cursor`; those still decrypting file themselves.
      if (cursor > conv.cursor) {
        conv.cursor = cursor;
        this.readIfSeen(conv);
      }
      if (frame.has_more?.[id]) again.push(conv);
    }
    if (again.length) this.requestSync(again);
  }

  onError(frame) {
    if (frame.code === 'not_member' && frame.conversation) this.syncing.delete(frame.conversation);
  }

  onPresence(frame) {
    if (frame.online) this.online.add(frame.user);
    else this.online.delete(frame.user);
    this.emit('presence');
  }

  onTyping(frame) {
    const conv = this.get(frame.conversation);
    if (!conv || frame.user === this.me.username) return;
    conv.typing.set(frame.user, Date.now());
    this.emit('typing', conv.id);
    setTimeout(() => this.emit('typing', conv.id), TYPING_SHOWN + 50);
  }

  onRead(frame) {
    const conv = this.get(frame.conversation);
    if (!conv) return;
    if (frame.user === this.me.username) {
      conv.read_up_to = Math.max(conv.read_up_to, frame.up_to);
      if (conv.read_up_to >= conv.last_seq) conv.unread = 0;
      this.emit('list');
    } else {
      conv.readBy.set(frame.user, Math.max(conv.readBy.get(frame.user) ?? 0, frame.up_to));
      this.emitSoon('messages', conv.id);
    }
  }

  /** A `conversation` frame: a new conversation, or one whose roster changed. */
  async onConversation(data) {
    if (!data || !Number.isSafeInteger(data.id)) return;
    if (takeDeclined(this, data)) return; // a message request deleted on one of her devices
    const known = new Set();
    for (const other of this.conversations.values()) if (!other.left) for (const m of other.members) known.add(m.id);
    const { conv, isNew } = this.conversations.upsert(data);
    if (this.socket && data.members?.some((m) => m.id !== this.me.id && !known.has(m.id))) {
      // New co-members: the server reports presence on connect only (docs/browser.md).
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.socket.refresh?.(), 300);
    }
    if (isNew) conv.cursor = 0;
    this.emit('list');
    this.emit('conversation', conv.id);
    await this.checkRoster(conv, data);
    this.observeMembers(conv);
    if (isNew) this.requestSync([conv]);
  }

  async onDevicesChanged(username) {
    try {
      await this.refreshUser(username);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
    this.emit('trust');
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
