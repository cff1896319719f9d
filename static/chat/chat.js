/**
 * The chat's state and behaviour, without DOM: conversations, their decrypted message
 * pages, presence, typing, read marks, the socket with sync cursors and the outbox.
 * The views listen for `change` events (detail {what, id}) and read the state.
 * @module chat
 */

import { api, ApiError } from './api.js';
import { Directory } from './directory.js';
import { BlockedError, Messenger, UntrustedDeviceError } from './messages.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { newClientMsgId, MAX_TEXT_CHARS } from './protocol.js';
import { ChatSocket } from './socket.js';
import { Trust } from './trust.js';

const PAGE = 50;
const RESEND_AFTER = 10000;
const TYPING_SHOWN = 6000;
const TYPING_EVERY = 3000;

export class ChatApp extends EventTarget {
  constructor({ me, deviceId, keys }) {
    super();
    this.me = me;
    this.deviceId = deviceId;
    this.keys = keys;
    this.conversations = new Map();
    this.online = new Set();
    this.openId = null;
    this.connection = { state: 'idle' };
    this.lastTypingSent = 0;
    this.syncing = new Set();
  }

  emit(what, id = null) {
    this.dispatchEvent(new CustomEvent('change', { detail: { what, id } }));
  }

  async start() {
    // Identity and trust (browser-identity lane): whom this device may encrypt to and believe.
    this.trust = await new Trust(this.me.id, { revokeDevice: (id) => this.revokeOwnDevice(id) }).load();
    if (this.keys.idKid) await this.trust.pinSelf(this.me, this.keys.idKid);
    this.directory = new Directory({ me: this.me, trust: this.trust });
    this.messenger = new Messenger({ me: this.me, keys: this.keys, directory: this.directory, trust: this.trust });
    this.outbox = await new Outbox(this.deviceId).load();
    this.notifier = await new Notifier(this.me.id).load();
    this.trust.addEventListener('change', () => {
      this.emit('trust');
      this.retryBlocked();
    });
    await this.refreshConversations();
    this.socket = new ChatSocket(this.deviceId);
    this.socket.addEventListener('state', (e) => {
      this.connection = e.detail;
      if (e.detail.state !== 'online') this.online.clear();
      this.emit('connection');
    });
    this.socket.addEventListener('open', () => this.onOpen());
    this.socket.addEventListener('frame', (e) => this.onFrame(e.detail).catch((err) => console.error('frame handling failed', err.name)));
    this.socket.addEventListener('fatal', (e) => {
      this.fatal = e.detail;
      this.emit('fatal');
    });
    this.socket.start();
    this.resender = setInterval(() => this.resendStale(), 3000);
    document.addEventListener('visibilitychange', () => this.markRead());
    window.addEventListener('focus', () => this.markRead());
    this.observeAllDevices();
  }

  stop() {
    clearInterval(this.resender);
    this.socket?.stop();
  }

  // --- conversations --------------------------------------------------------------------

  async refreshConversations() {
    const { conversations } = await api.conversations();
    for (const data of conversations) this.upsert(data, { fromList: true });
    this.emit('list');
  }

  upsert(data, { fromList = false } = {}) {
    if (!fromList && this.socket) {
      const known = new Set();
      for (const other of this.conversations.values()) if (!other.left) for (const m of other.members) known.add(m.id);
      if (data.members.some((m) => m.id !== this.me.id && !known.has(m.id))) {
        // New co-members: the server reports presence on connect only (docs/browser.md).
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(() => this.socket.refresh(), 300);
      }
    }
    let conv = this.conversations.get(data.id);
    if (!conv) {
      conv = {
        id: data.id,
        messages: new Map(),
        byClientId: new Map(),
        pending: new Map(),
        readBy: new Map(),
        typing: new Map(),
        cursor: data.last_seq,
        oldestSeq: null,
        hasMore: true,
        loaded: false,
        loading: null,
        unread: data.unread,
        read_up_to: data.read_up_to ?? 0,
        last_seq: data.last_seq,
        last_activity: data.last_activity ?? data.created,
      };
      this.conversations.set(data.id, conv);
    } else if (fromList) {
      conv.unread = data.unread;
      conv.read_up_to = Math.max(conv.read_up_to, data.read_up_to ?? 0);
    }
    Object.assign(conv, {
      kind: data.kind,
      title: data.title,
      members: data.members,
      owner: data.owner,
      created: data.created,
    });
    if (data.last_seq > conv.last_seq) conv.last_seq = data.last_seq;
    if (data.last_activity && (!conv.last_activity || data.last_activity > conv.last_activity)) conv.last_activity = data.last_activity;
    conv.left = !data.members.some((m) => m.id === this.me.id);
    return conv;
  }

  /** Conversations, newest activity first. */
  list() {
    return [...this.conversations.values()].sort((a, b) => (b.last_activity ?? '').localeCompare(a.last_activity ?? '') || b.id - a.id);
  }

  get(id) {
    return this.conversations.get(id);
  }

  /** A display name: the group's title, or the other member of a direct chat. */
  titleOf(conv) {
    if (conv.kind === 'group') return conv.title || conv.members.map((m) => m.username).filter((n) => n !== this.me.username).join(', ') || 'Group';
    const other = conv.members.find((m) => m.id !== this.me.id);
    return other?.username ?? conv.title ?? 'Direct chat';
  }

  peerOf(conv) {
    return conv.kind === 'direct' ? conv.members.find((m) => m.id !== this.me.id)?.username ?? null : null;
  }

  async startDirect(username) {
    const { conversation } = await api.createConversation([username]);
    const conv = this.upsert(conversation);
    this.emit('list');
    this.observeMembers(conv);
    return conv;
  }

  async createGroup(title, usernames) {
    const { conversation } = await api.createConversation(usernames, { title: title || null, kind: 'group' });
    const conv = this.upsert(conversation);
    this.emit('list');
    this.observeMembers(conv);
    return conv;
  }

  async addMember(conv, username) {
    const { conversation } = await api.addMember(conv.id, username);
    this.upsert(conversation);
    this.emit('conversation', conv.id);
    this.emit('list');
    this.observeMembers(conv);
  }

  async removeMember(conv, username) {
    await api.removeMember(conv.id, username);
    if (username === this.me.username) conv.left = true;
    conv.members = conv.members.filter((m) => m.username !== username);
    this.emit('conversation', conv.id);
    this.emit('list');
  }

  // --- opening and history ----------------------------------------------------------------

  async open(id) {
    this.openId = id;
    const conv = this.get(id);
    this.emit('open', id);
    if (!conv) return;
    if (!conv.loaded) await this.loadNewest(conv);
    this.markRead();
    this.observeMembers(conv);
  }

  close() {
    this.openId = null;
    this.emit('open', null);
  }

  loadNewest(conv) {
    if (!conv.loading) {
      conv.loading = (async () => {
        const page = await api.history(conv.id, { limit: PAGE });
        await this.ingest(conv, page.messages, { live: false });
        conv.hasMore = page.has_more;
        if (page.messages.length) conv.oldestSeq = Math.min(conv.oldestSeq ?? Infinity, page.messages[0].seq);
        conv.loaded = true;
        this.emit('messages', conv.id);
      })().finally(() => {
        conv.loading = null;
      });
    }
    return conv.loading;
  }

  /** The page of history just above the oldest shown; false when there is none. */
  async loadOlder(conv) {
    if (!conv.loaded || !conv.hasMore || conv.loading || conv.oldestSeq === null) return false;
    conv.loading = (async () => {
      const page = await api.history(conv.id, { beforeSeq: conv.oldestSeq, limit: PAGE });
      await this.ingest(conv, page.messages, { live: false });
      conv.hasMore = page.has_more;
      if (page.messages.length) conv.oldestSeq = Math.min(conv.oldestSeq, page.messages[0].seq);
      this.emit('older', conv.id);
    })().finally(() => {
      conv.loading = null;
    });
    await conv.loading;
    return true;
  }

  /** Decrypt and file messages (in parallel); live ones also move cursors and counters. */
  async ingest(conv, messages, { live }) {
    const fresh = messages.filter((m) => !conv.messages.has(m.seq));
    const opened = await Promise.all(fresh.map((m) => this.openOne(conv, m)));
    for (const item of opened) {
      if (!item || conv.messages.has(item.seq)) continue;
      this.file(conv, item);
      if (live) this.onNewMessage(conv, item);
    }
    this.advanceCursor(conv);
  }

  async openOne(conv, message) {
    const own = message.sender_id === this.me.id;
    const pending = own ? conv.pending.get(message.client_msg_id) : null;
    const result = pending && pending.text !== undefined && message.sender_device === this.deviceId
      ? { status: 'ok', text: pending.text }
      : await this.messenger.open(message);
    return {
      id: message.id,
      seq: message.seq,
      sender: message.sender,
      sender_id: message.sender_id,
      sender_device: message.sender_device,
      client_msg_id: message.client_msg_id,
      created: message.created,
      own,
      ...result,
    };
  }

  file(conv, item) {
    const replayKey = `${item.sender_id}|${item.client_msg_id}`;
    const first = conv.byClientId.get(replayKey);
    if (first !== undefined && first !== item.id) {
      item.status = 'replay';
      item.text = undefined;
    } else {
      conv.byClientId.set(replayKey, item.id);
    }
    conv.messages.set(item.seq, item);
    if (item.own) conv.pending.delete(item.client_msg_id);
    if (item.seq > conv.last_seq) {
      conv.last_seq = item.seq;
    }
    if (!conv.last_activity || item.created > conv.last_activity) conv.last_activity = item.created;
  }

  onNewMessage(conv, item) {
    if (item.own || item.seq <= conv.read_up_to) return;
    if (this.openId === conv.id && document.visibilityState === 'visible') {
      this.markRead();
    } else {
      conv.unread += 1;
      this.notifier?.message(item.sender, () => this.emit('navigate', conv.id));
    }
  }

  advanceCursor(conv) {
    while (conv.messages.has(conv.cursor + 1)) conv.cursor += 1;
    if (conv.last_seq > conv.cursor) this.requestSync([conv]);
  }

  /** Sorted items to show: stored messages by seq, then this device's pending ones. */
  items(conv) {
    const stored = [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
    const pending = [...conv.pending.values()].sort((a, b) => a.queued.localeCompare(b.queued));
    return { stored, pending };
  }

  /** "sent" or "read" for an own stored message. */
  deliveryOf(conv, item) {
    const others = conv.members.filter((m) => m.id !== this.me.id);
    if (others.length && others.every((m) => (conv.readBy.get(m.username) ?? 0) >= item.seq)) return 'read';
    return 'sent';
  }

  markRead() {
    const conv = this.get(this.openId);
    if (!conv || document.visibilityState !== 'visible') return;
    const upTo = conv.cursor;
    if (upTo > conv.read_up_to || conv.unread) {
      if (upTo > conv.read_up_to && this.socket?.send({ type: 'read', conversation: conv.id, up_to: upTo })) conv.read_up_to = upTo;
      if (upTo >= conv.last_seq) conv.unread = 0;
      this.emit('list');
    }
  }

  // --- sending ------------------------------------------------------------------------------

  /** Encrypt and queue a text; it shows as pending at once. */
  async sendText(conv, text) {
    if (!text.trim()) return;
    if (Array.from(text).length > MAX_TEXT_CHARS) throw new Error(`A message is at most ${MAX_TEXT_CHARS} characters.`);
    const clientMsgId = newClientMsgId();
    const pending = { client_msg_id: clientMsgId, text, queued: new Date().toISOString(), state: 'pending', conversation: conv.id };
    conv.pending.set(clientMsgId, pending);
    conv.last_activity = pending.queued;
    this.emit('messages', conv.id);
    this.emit('list');
    await this.sealAndQueue(conv, pending, { force: false });
  }

  async sealAndQueue(conv, pending, { force }) {
    try {
      const { envelope } = await this.messenger.seal(conv, pending.client_msg_id, pending.text, { force });
      pending.state = 'pending';
      pending.error = null;
      await this.outbox.put({ conversation: conv.id, client_msg_id: pending.client_msg_id, envelope, attempts: pending.attempts ?? 0 });
      this.transmit(this.outbox.get(pending.client_msg_id));
    } catch (error) {
      pending.state = error instanceof BlockedError ? 'blocked' : 'failed';
      pending.error = error instanceof BlockedError || error instanceof UntrustedDeviceError ? error.message : 'Could not encrypt this message.';
      if (!(error instanceof BlockedError || error instanceof UntrustedDeviceError)) console.error('seal failed', error?.name);
    }
    this.emit('messages', conv.id);
  }

  transmit(item) {
    if (!item) return;
    item.sentAt = Date.now();
    this.socket?.send({ type: 'send', conversation: item.conversation, client_msg_id: item.client_msg_id, envelope: item.envelope });
  }

  resendStale() {
    if (this.connection.state !== 'online') return;
    for (const item of this.outbox.list()) {
      if (!item.hold && Date.now() - item.sentAt > RESEND_AFTER) this.transmit(item);
    }
  }

  /** Re-encrypt messages held back by a key change once the user accepted it. */
  retryBlocked() {
    for (const conv of this.conversations.values()) {
      for (const pending of conv.pending.values()) {
        if (pending.state === 'blocked') this.sealAndQueue(conv, pending, { force: true });
      }
    }
  }

  async retryFailed(conv, clientMsgId) {
    const pending = conv.pending.get(clientMsgId);
    if (pending) await this.sealAndQueue(conv, pending, { force: true });
  }

  discardPending(conv, clientMsgId) {
    conv.pending.delete(clientMsgId);
    this.outbox.remove(clientMsgId);
    this.emit('messages', conv.id);
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

  // --- the socket ---------------------------------------------------------------------------

  onOpen() {
    this.requestSync([...this.conversations.values()], { all: true });
    for (const item of this.outbox.list()) this.transmit(item);
  }

  requestSync(convs, { all = false } = {}) {
    const cursors = {};
    for (const conv of convs) {
      if (!all && this.syncing.has(conv.id)) continue;
      if (conv.left && !all) continue;
      cursors[String(conv.id)] = conv.cursor;
      this.syncing.add(conv.id);
    }
    if (Object.keys(cursors).length && !this.socket?.send({ type: 'sync', cursors })) {
      for (const id of Object.keys(cursors)) this.syncing.delete(Number(id));
    }
  }

  async onFrame(frame) {
    switch (frame.type) {
      case 'message':
        return this.onMessage(frame.message);
      case 'ack':
        return this.onAck(frame);
      case 'synced':
        return this.onSynced(frame);
      case 'error':
        return this.onError(frame);
      case 'presence':
        if (frame.online) this.online.add(frame.user);
        else this.online.delete(frame.user);
        return this.emit('presence');
      case 'typing': {
        const conv = this.get(frame.conversation);
        if (!conv || frame.user === this.me.username) return undefined;
        conv.typing.set(frame.user, Date.now());
        this.emit('typing', conv.id);
        setTimeout(() => this.emit('typing', conv.id), TYPING_SHOWN + 50);
        return undefined;
      }
      case 'read':
        return this.onRead(frame);
      case 'conversation':
        return this.onConversation(frame.conversation);
      case 'devices_changed':
        return this.onDevicesChanged(frame.user);
      default:
        return undefined;
    }
  }

  async onMessage(message) {
    if (!message || typeof message.conversation !== 'number') return;
    let conv = this.get(message.conversation);
    if (!conv) {
      await this.refreshConversations();
      conv = this.get(message.conversation);
      if (!conv) return;
    }
    if (message.seq > conv.last_seq) conv.last_seq = message.seq;
    await this.ingest(conv, [message], { live: true });
    this.emit('messages', conv.id);
    this.emit('list');
  }

  async onAck(frame) {
    const item = this.outbox.get(frame.client_msg_id);
    await this.outbox.remove(frame.client_msg_id);
    const conv = this.get(item?.conversation) ?? [...this.conversations.values()].find((c) => c.pending.has(frame.client_msg_id));
    if (!conv) return;
    const pending = conv.pending.get(frame.client_msg_id);
    if (pending && !conv.messages.has(frame.seq)) {
      this.file(conv, {
        id: frame.id,
        seq: frame.seq,
        sender: this.me.username,
        sender_id: this.me.id,
        sender_device: this.deviceId,
        client_msg_id: frame.client_msg_id,
        created: frame.created,
        own: true,
        status: 'ok',
        text: pending.text,
      });
    }
    conv.pending.delete(frame.client_msg_id);
    if (frame.seq > conv.last_seq) conv.last_seq = frame.seq;
    this.advanceCursor(conv);
    this.emit('messages', conv.id);
    this.emit('list');
  }

  onSynced(frame) {
    const again = [];
    for (const [id, cursor] of Object.entries(frame.cursors ?? {})) {
      const conv = this.get(Number(id));
      this.syncing.delete(Number(id));
      if (!conv) continue;
      // The server sent everything up to `cursor`; those still decrypting file themselves.
      if (cursor > conv.cursor) conv.cursor = cursor;
      if (frame.has_more?.[id]) again.push(conv);
    }
    if (again.length) this.requestSync(again);
  }

  async onError(frame) {
    if (frame.client_msg_id) {
      const item = this.outbox.get(frame.client_msg_id);
      const conv = this.get(item?.conversation);
      if (!item || !conv) return;
      if (frame.code === 'rate_limited') {
        item.sentAt = Date.now();
        return;
      }
      if (frame.code === 'stale_devices' && (item.attempts ?? 0) < 3) {
        item.attempts = (item.attempts ?? 0) + 1;
        item.hold = true;
        let pending = conv.pending.get(item.client_msg_id);
        if (!pending) {
          const text = await this.messenger.reopenOwn(conv.id, item.client_msg_id, item.envelope);
          if (text === null) return this.dropItem(conv, item, 'Could not re-encrypt this message.');
          pending = { client_msg_id: item.client_msg_id, text, queued: item.queued, state: 'pending', conversation: conv.id };
          conv.pending.set(item.client_msg_id, pending);
        }
        pending.attempts = item.attempts;
        pending.notice = describeStale(frame);
        await this.outbox.remove(item.client_msg_id);
        return this.sealAndQueue(conv, pending, { force: true });
      }
      return this.dropItem(conv, item, frame.detail || frame.code);
    }
    if (frame.code === 'not_member' && frame.conversation) this.syncing.delete(frame.conversation);
    return undefined;
  }

  async dropItem(conv, item, reason) {
    await this.outbox.remove(item.client_msg_id);
    const pending = conv.pending.get(item.client_msg_id);
    if (pending) {
      pending.state = 'failed';
      pending.error = reason;
    }
    this.emit('messages', conv.id);
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
      this.emit('messages', conv.id);
    }
  }

  onConversation(data) {
    const known = this.conversations.has(data.id);
    const conv = this.upsert(data);
    if (!known) conv.cursor = 0;
    this.emit('list');
    this.emit('conversation', conv.id);
    this.observeMembers(conv);
    if (!known) this.requestSync([conv]);
  }

  async onDevicesChanged(username) {
    try {
      await this.directory.refresh(username);
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
    try {
      await this.directory.load(username);
      this.emit('devices', username);
    } catch {
      /* offline: tried again on the next change */
    }
  }

  /** The identity and device notices of a conversation (trust.noticesFor). */
  noticesFor(conv) {
    const names = conv.members.map((m) => m.username);
    if (!names.includes(this.me.username)) names.push(this.me.username);
    return this.trust.noticesFor(names);
  }

  /** Revoke one of my devices ("Revoke it"), then look at my device list again. */
  async revokeOwnDevice(id) {
    await api.revokeDevice(id);
    await this.directory.refresh(this.me.username);
  }
}

function describeStale(frame) {
  const added = frame.missing?.length ?? 0;
  const removed = frame.extra?.length ?? 0;
  const parts = [];
  if (added) parts.push(`${added} new device${added === 1 ? '' : 's'}`);
  if (removed) parts.push(`${removed} removed device${removed === 1 ? '' : 's'}`);
  return `Devices changed (${parts.join(', ') || 'device list'}); re-encrypted.`;
}
