/**
 * The chat's state and behaviour, without DOM: it wires the parts together and is what
 * the views read. Conversations (conversations.js) and who is in them (rosters.js),
 * what each shows (timeline.js, judged by ledgers.js), sending (sender.js with
 * counters.js and outbox.js), files (uploads.js, downloads.js), group changes (groups.js),
 * frames (router.js), and the small things: presence, typing, read marks, notifications.
 * Its own behaviour is split by concern into modules whose methods it takes on:
 * chat-conversations.js (the list, rosters, notices), chat-timeline.js (opening,
 * history, unread, sync requests), chat-sending.js (sending, typing), chat-frames.js
 * (what each server frame does).
 *
 * The views listen for `change` events (detail {what, id}): `list`, `open`, `messages`,
 * `older`, `conversation`, `notices`, `typing`, `presence`, `connection`, `trust`,
 * `devices`, `fatal`, `navigate`.
 * @module chat
 */

import { api } from './api.js';
import { ChatConversations } from './chat-conversations.js';
import { ChatFrames } from './chat-frames.js';
import { ChatSending } from './chat-sending.js';
import { ChatTimeline } from './chat-timeline.js';
import { Conversations } from './conversations.js';
import { Counters } from './counters.js';
import { Directory } from './directory.js';
import { Downloads } from './downloads.js';
import { Groups } from './groups.js';
import { LedgerStore } from './ledgers.js';
import { Messenger } from './messages.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { RichMessages } from './rich.js';
import { routeFrame } from './router.js';
import { RosterStore } from './rosters.js';
import { LocalSearch } from './search.js';
import { Sender } from './sender.js';
import { ChatSocket } from './socket.js';
import { kv as browserKv } from './store.js';
import { Timeline } from './timeline.js';
import { Trust } from './trust.js';
import { Uploads } from './uploads.js';

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
      onOwnFiled: (item) => {
        this.sender?.settled(item.client_msg_id);
        // the list's preview: a message filed from its ack is new to the list too (its copy
        // fanned out to this socket may come while it is filed, and is then skipped)
        this.emitSoon('list', null);
      },
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
}

// The app's behaviour by concern, each in a module of its own, as methods of ChatApp
// (a name defined twice is a mistake, not an override).
for (const part of [ChatConversations, ChatTimeline, ChatSending, ChatFrames]) {
  for (const name of Object.getOwnPropertyNames(part.prototype)) {
    if (name === 'constructor') continue;
    if (Object.hasOwn(ChatApp.prototype, name)) throw new Error(`ChatApp.${name} is defined twice`);
    Object.defineProperty(ChatApp.prototype, name, Object.getOwnPropertyDescriptor(part.prototype, name));
  }
}
