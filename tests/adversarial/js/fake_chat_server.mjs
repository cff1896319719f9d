// A chat server in memory for running the browser app's own modules (static/chat, ChatApp
// and below, no DOM) under node: the JSON API (by replacing the functions of api.js's
// `api` object), a WebSocket stand-in, and the people the test plays. It behaves like the
// real server (PROTOCOL v2: roster records, counters, heads, idempotent sends) until a
// test tells it to lie; every envelope the app sends is kept, so a test can check who
// could read it.
import * as P from '../../../static/chat/protocol.js';
import * as R from '../../../static/chat/roster.js';
import { api, ApiError } from '../../../static/chat/api.js';
import { ChatApp } from '../../../static/chat/chat.js';

/** An in-memory `kv` of the shape store.js gives (values cloned as IndexedDB does). */
/**
 * Wait until `check()` (sync or async) is true, looking every 5 ms for up to 5 s; fails
 * with "never happened: <what>" (`what` may be a function giving the text then).
 */
export async function until(check, what) {
  for (let i = 0; i < 1000; i += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`never happened: ${typeof what === 'function' ? what() : what}`);
}

export function memoryKv(map = new Map()) {
  const clone = (v) => (v === undefined ? undefined : structuredClone(v));
  return {
    map,
    async get(key) { return clone(map.get(key)); },
    async set(key, value) { map.set(key, clone(value)); },
    async remove(key) { map.delete(key); },
    async update(key, change) {
      const result = change(clone(map.get(key)));
      if (result !== undefined) map.set(key, clone(result));
      return result;
    },
    async list(prefix) {
      return [...map.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, clone(v)]);
    },
  };
}

const KEYS = new Map();
const EARLIER = new Date(Date.now() - 86400000).toISOString();
const tick = () => new Promise((resolve) => setImmediate(resolve));

export class FakeServer {
  constructor() {
    this.users = new Map(); // username -> {id, username, keys, deviceId}
    this.conversations = new Map();
    this.messages = new Map(); // conversation id -> [message]
    this.counters = new Map(); // `${device}|${conv}` -> max n
    this.sent = []; // every envelope the app under test sent: {conversation, client_msg_id, envelope}
    this.frames = []; // every frame the app sent
    this.sockets = new Set();
    this.nextId = { user: 1, device: 1, conversation: 1, message: 1 };
    this.hooks = {}; // history(conv, page) -> page, conversationView(conv, view) -> view
    this.install();
  }

  /** A person with one device (RSA 2048 keys, made once per name and process, for speed). */
  async user(username) {
    if (!KEYS.has(username)) KEYS.set(username, P.generateDeviceKeys(2048));
    const keys = await KEYS.get(username);
    const user = { id: this.nextId.user++, username, keys, deviceId: this.nextId.device++ };
    this.users.set(username, user);
    return user;
  }

  byId(id) {
    return [...this.users.values()].find((u) => u.id === id);
  }

  /** The directory seam (directory.js) of an honest key directory over these users. */
  directory() {
    const server = this;
    return {
      async recipientsOf(usernames) {
        const keys = {};
        for (const name of usernames) {
          const user = server.users.get(name);
          if (user) keys[user.keys.encKid] = user.keys.encPublic;
        }
        return { keys, problems: [] };
      },
      async senderKey(message) {
        const user = server.byId(message.sender_id);
        if (!user || user.deviceId !== message.sender_device || user.keys.sigKid !== message.envelope?.sig_kid) return null;
        return { key: user.keys.sigPublic, note: null };
      },
      async recordSigner(userId, sigKid) {
        if (server.hooks.recordSigner) return server.hooks.recordSigner(userId, sigKid);
        const user = server.byId(userId);
        return user && user.keys.sigKid === sigKid ? user.keys.sigPublic : null;
      },
    };
  }

  /**
   * A ChatApp of `user` on this server, its state in `kv` (share one kv to "reload" or
   * to be a second tab of the profile; share `locks` too for Web Locks between tabs).
   */
  async app(user, kv = memoryKv(), locks = null) {
    this.me = user;
    const socket = new FakeSocket(this, user);
    const app = new ChatApp({
      me: { id: user.id, username: user.username },
      deviceId: user.deviceId,
      keys: user.keys,
      env: {
        kv,
        socket,
        directory: this.directory(),
        trust: this.trust ?? { noticesFor: () => [], addEventListener() {} },
        notifier: { message() {} },
        visible: () => true,
        ...(locks ? { locks } : {}),
      },
    });
    app.kv = kv;
    await app.start();
    await this.settle();
    return app;
  }

  /** Let every pending promise and frame run. */
  async settle(rounds = 20) {
    for (let i = 0; i < rounds; i += 1) await tick();
  }

  // --- state ---------------------------------------------------------------------------

  membersOf(conv) {
    if (conv.membersOverride) return conv.membersOverride;
    if (conv.kind === 'direct') return conv.pair.map((id) => this.byId(id));
    if (!conv.state) return conv.v1.members;
    return [...conv.state.members].map((id) => this.byId(id));
  }

  view(conv) {
    const members = this.membersOf(conv).map((u) => ({ id: u.id, username: u.username }));
    const last = conv.roster?.[conv.roster.length - 1];
    const ownerId = conv.kind === 'group' ? (conv.state ? conv.state.owner : conv.v1.owner.id) : null;
    const view = {
      id: conv.id,
      kind: conv.kind,
      title: conv.kind === 'group' ? (conv.state ? conv.state.title : conv.v1.title) : null,
      members,
      owner: ownerId ? { id: ownerId, username: this.byId(ownerId).username } : null,
      last_seq: (this.messages.get(conv.id) ?? []).length,
      unread: 0,
      read_up_to: 0,
      created: conv.created,
      last_activity: conv.created,
      gid: conv.kind === 'group' ? conv.gid : null,
      roster_head: last ? { n: last.n, hash: last.hash } : null,
      request: false,
    };
    return this.hooks.conversationView ? this.hooks.conversationView(conv, view) : view;
  }

  direct(a, b) {
    const conv = { id: this.nextId.conversation++, kind: 'direct', pair: [a.id, b.id].sort((x, y) => x - y), created: EARLIER };
    this.conversations.set(conv.id, conv);
    this.messages.set(conv.id, []);
    return conv;
  }

  /** Two people, alice and bob, and their direct conversation: { alice, bob, conv }. */
  async aliceAndBob() {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => this.user(n)));
    return { alice, bob, conv: this.direct(alice, bob) };
  }

  /** A group from before signed rosters (v1): no gid, no records. */
  v1group(owner, others, title = 'Old club') {
    const conv = { id: this.nextId.conversation++, kind: 'group', gid: null, roster: [], state: null, v1: { owner, members: [owner, ...others], title }, created: EARLIER };
    this.conversations.set(conv.id, conv);
    this.messages.set(conv.id, []);
    return conv;
  }

  /** A group made by `owner` (its device signs record 0). */
  async group(owner, others, title = 'Club') {
    const gid = crypto.randomUUID();
    const record = await R.makeRecord(owner.keys, { gid, n: 0, prev: R.GENESIS, op: 'create', subjects: [owner.id, ...others.map((u) => u.id)], by: owner.id, title });
    return this.createGroupFrom(owner, { gid, title, roster: record });
  }

  createGroupFrom(owner, { gid, title, roster }) {
    const conv = { id: this.nextId.conversation++, kind: 'group', gid, roster: [], state: new R.RosterState(gid), created: new Date().toISOString() };
    this.appendRecord(conv, roster);
    if (conv.state.title !== title) throw new Error('title differs');
    this.conversations.set(conv.id, conv);
    this.messages.set(conv.id, []);
    return conv;
  }

  appendRecord(conv, record) {
    conv.state.apply(record);
    conv.roster.push({ ...record, created: new Date(Date.now() + conv.roster.length).toISOString() });
  }

  /** A record signed by `user`'s device on the group's current head. */
  async change(conv, user, op, subjects, title = null) {
    const record = await R.makeRecord(user.keys, { gid: conv.gid, n: conv.state.n + 1, prev: conv.state.head, op, subjects, by: user.id, title });
    this.appendRecord(conv, record);
    this.announce(conv);
    return record;
  }

  /**
   * A message by `sender` stored as the real server would (it signs with its own n): the
   * text, or any `payload` (a reaction, an edit …) in its place.
   */
  async post(conv, sender, text, { n, clientMsgId = P.newClientMsgId(), head, payload = null } = {}) {
    const key = `${sender.deviceId}|${conv.id}`;
    const number = n ?? (this.counters.get(key) ?? 0) + 1;
    const recipients = this.membersOf(conv);
    const envelope = await P.sealEnvelope({
      plaintext: payload ?? P.textMessage(text),
      conversationId: conv.id,
      senderId: sender.id,
      clientMsgId,
      n: number,
      head: head ?? (conv.kind === 'group' && conv.state ? conv.state.head : ''),
      senderKeys: sender.keys,
      recipientKeys: Object.fromEntries(recipients.map((u) => [u.keys.encKid, u.keys.encPublic])),
    });
    this.counters.set(key, Math.max(this.counters.get(key) ?? 0, number));
    return this.store(conv, sender, clientMsgId, envelope);
  }

  store(conv, sender, clientMsgId, envelope) {
    const list = this.messages.get(conv.id);
    const message = {
      id: this.nextId.message++,
      conversation: conv.id,
      seq: list.length + 1,
      sender_id: sender.id,
      sender: sender.username,
      sender_device: sender.deviceId,
      client_msg_id: clientMsgId,
      created: new Date().toISOString(),
      envelope,
      blobs: [],
      deleted: false,
    };
    list.push(message);
    return message;
  }

  // --- frames to the app ---------------------------------------------------------------

  push(frame) {
    for (const socket of this.sockets) socket.deliver(frame);
  }

  announce(conv) {
    this.push({ type: 'conversation', conversation: this.view(conv) });
  }

  deliver(message) {
    this.push({ type: 'message', message: structuredClone(message) });
  }

  // --- the app's frames ------------------------------------------------------------------

  async onFrame(socket, frame) {
    this.frames.push(frame);
    if (frame.type === 'send') return this.onSend(socket, frame);
    if (frame.type === 'sync') {
      const cursors = {};
      for (const [id, cursor] of Object.entries(frame.cursors)) {
        const list = this.messages.get(Number(id)) ?? [];
        for (const m of list.filter((x) => x.seq > cursor)) socket.deliver({ type: 'message', message: structuredClone(m) });
        cursors[id] = Math.max(cursor, list.length);
      }
      socket.deliver({ type: 'synced', cursors, has_more: {} });
    }
    return undefined;
  }

  onSend(socket, frame) {
    const user = socket.user;
    const conv = this.conversations.get(frame.conversation);
    const envelope = frame.envelope;
    this.sent.push({ conversation: frame.conversation, client_msg_id: frame.client_msg_id, envelope: structuredClone(envelope) });
    const error = (code, extra = {}) => socket.deliver({ type: 'error', code, detail: code, client_msg_id: frame.client_msg_id, ...extra });
    const list = this.messages.get(conv.id);
    const stored = list.find((m) => m.sender_id === user.id && m.client_msg_id === frame.client_msg_id);
    if (stored) return socket.deliver({ type: 'ack', client_msg_id: stored.client_msg_id, id: stored.id, seq: stored.seq, created: stored.created });
    if (this.hooks.refuse) {
      const refusal = this.hooks.refuse(frame);
      if (refusal) return error(refusal.code, refusal.extra);
    }
    const head = conv.kind === 'group' && conv.state ? conv.state.head : '';
    if (envelope.head !== head && !this.hooks.acceptAnyHead) {
      const last = conv.roster?.[conv.roster.length - 1];
      return error('stale_roster', { head: last ? { n: last.n, hash: last.hash } : null });
    }
    const key = `${user.deviceId}|${conv.id}`;
    if (envelope.n <= (this.counters.get(key) ?? 0)) return error('stale_counter', { n: this.counters.get(key) });
    const wanted = new Set(this.membersOf(conv).map((u) => u.keys.encKid));
    const given = new Set(Object.keys(envelope.keys));
    const missing = [...wanted].filter((k) => !given.has(k));
    const extra = [...given].filter((k) => !wanted.has(k));
    if ((missing.length || extra.length) && !this.hooks.acceptAnyKeys) return error('stale_devices', { missing, extra });
    this.counters.set(key, envelope.n);
    const message = this.store(conv, user, frame.client_msg_id, envelope);
    socket.deliver({ type: 'ack', client_msg_id: message.client_msg_id, id: message.id, seq: message.seq, created: message.created });
    this.deliver(message);
    return undefined;
  }

  // --- the JSON API ----------------------------------------------------------------------

  install() {
    const server = this;
    const fail = (status, code, extra = {}) => { throw new ApiError(status, code, code, { error: { code, detail: code, ...extra } }); };
    Object.assign(api, {
      conversations: async () => ({ conversations: [...server.conversations.values()].map((c) => server.view(c)) }),
      history: async (id, { beforeSeq = null, limit = 50 } = {}) => {
        const list = (server.messages.get(id) ?? []).filter((m) => beforeSeq === null || m.seq < beforeSeq);
        const page = { messages: structuredClone(list.slice(-limit)), has_more: list.length > limit };
        return server.hooks.history ? server.hooks.history(server.conversations.get(id), page, { beforeSeq }) : page;
      },
      roster: async (id, after = -1) => {
        const conv = server.conversations.get(id);
        const records = server.hooks.roster ? server.hooks.roster(conv, after) : (conv.roster ?? []).filter((r) => r.n > after);
        return { records: structuredClone(records) };
      },
      createGroup: async (body) => {
        const conv = server.createGroupFrom(server.me, body);
        return { conversation: server.view(conv) };
      },
      postRecord: async (id, { record, gid }) => {
        const conv = server.conversations.get(id);
        if (server.hooks.beforeRecord) await server.hooks.beforeRecord(conv, record);
        if (!conv.state) { // record 0 of a v1 group: its owner, naming exactly its members
          const ids = conv.v1.members.map((u) => u.id).sort((a, b) => a - b);
          if (!gid || record.n !== 0 || record.op !== 'create' || record.by !== conv.v1.owner.id || record.by !== server.me.id
              || JSON.stringify(record.subjects) !== JSON.stringify(ids)) fail(400, 'bad_request');
          conv.gid = gid;
          conv.state = new R.RosterState(gid);
          server.appendRecord(conv, record);
          server.bootstrapped = (server.bootstrapped ?? 0) + 1;
          queueMicrotask(() => server.announce(conv));
          return { conversation: server.view(conv) };
        }
        if (record.prev !== conv.state.head || record.n !== conv.state.n + 1) {
          const last = conv.roster[conv.roster.length - 1];
          fail(409, 'stale_roster', { head: { n: last.n, hash: last.hash } });
        }
        server.appendRecord(conv, record);
        queueMicrotask(() => server.announce(conv));
        return { conversation: server.view(conv) };
      },
      createConversation: async ([username]) => {
        const other = server.users.get(username);
        const conv = [...server.conversations.values()].find((c) => c.kind === 'direct' && c.pair.includes(other.id) && c.pair.includes(server.me.id))
          ?? server.direct(server.me, other);
        return { conversation: server.view(conv) };
      },
      keyOwner: async (kid) => {
        const user = [...server.users.values()].find((u) => u.keys.sigKid === kid || u.keys.encKid === kid);
        if (!user) fail(404, 'not_found');
        return { device: { id: user.deviceId }, user: { id: user.id, username: user.username } };
      },
    });
  }
}

/** The app's WebSocket, connected to the fake server at once. */
export class FakeSocket extends EventTarget {
  constructor(server, user) {
    super();
    this.server = server;
    this.user = user;
    this.open = false;
  }

  start() {
    this.open = true;
    this.server.sockets.add(this);
    this.dispatchEvent(new CustomEvent('state', { detail: { state: 'online' } }));
    this.dispatchEvent(new Event('open'));
  }

  stop() {
    this.open = false;
    this.server.sockets.delete(this);
  }

  refresh() {}

  send(frame) {
    if (!this.open) return false;
    const copy = structuredClone(frame);
    setImmediate(() => this.server.onFrame(this, copy));
    return true;
  }

  deliver(frame) {
    if (!this.open) return;
    const copy = structuredClone(frame);
    setImmediate(() => this.dispatchEvent(new CustomEvent('frame', { detail: copy })));
  }
}

/** Whether `user` can open `envelope` (it carries an entry for her key). */
export function readableBy(envelope, user) {
  return Object.hasOwn(envelope.keys, user.keys.encKid);
}

/** Web Locks (navigator.locks.request) for tabs of one profile in one node process. */
export function memoryLocks() {
  const tails = new Map();
  return {
    request(name, callback) {
      const before = tails.get(name) ?? Promise.resolve();
      const run = before.then(() => callback());
      tails.set(name, run.catch(() => {}));
      return run;
    },
  };
}
