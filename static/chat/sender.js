/**
 * Sending (PROTOCOL §2, §9): every text gets this device's next counter `n` for its
 * conversation (counters.js, taken before it is sealed), is sealed as a v2 envelope for
 * the conversation's verified members under its roster head (rosters.js `targets`, keys
 * from `directory.recipientsOf`), stored in the outbox, and sent.
 *
 * One conversation's messages go out in `n` order, several in flight on the socket at
 * once (the server handles one socket's frames in order), paced under the server's rate
 * limit so a burst is not refused. Refusals are handled per message:
 * `stale_counter` seals again with a higher `n`; `stale_roster` fetches and verifies the
 * roster and seals again for its members with the same `n`; `stale_devices` fetches the
 * device lists and seals again with the same `n`; `rate_limited` sends again shortly.
 * A conversation that may not be sent to (tampered, a problem with a member's keys, not
 * a member) holds its messages as *blocked* with the reason; nothing is sent.
 *
 * The payload of a message (a text, or a `file` payload naming an uploaded blob, sent with
 * `blobs`) lives only in memory (for showing it and sealing it again); the outbox holds
 * ciphertext and the blob ids, and a reload reopens its own envelopes to show them.
 *
 * Events: `change` (detail: conversation id).
 * @module sender
 */

import { deviceChangeText } from './device-notices.js';
import { MAX_TEXT_CHARS, newClientMsgId, textMessage } from './protocol.js';
import { NotSendable } from './rosters.js';

const RESEND_AFTER = 10000;
const MAX_SEALS = 6;
/** Send frames this tab may send at once, and per second after that (the server allows 50 and 20; the rest is for sync, read, typing and ping). */
const BURST = 44;
const PER_SECOND = 18;
const RATE_LIMIT_WAIT = 1000;
/** New messages sealed at once (in queue order): enough to keep WebCrypto busy, few enough that the first is ready soon. */
const SEAL_AT_ONCE = 4;
/** States of a message this tab still has to number, seal, send or see acknowledged. */
const ACTIVE = new Set(['waiting', 'sealing', 'ready', 'inflight', 'retry']);

/**
 * @typedef {object} Pending
 * @property {string} client_msg_id
 * @property {number} conversation
 * @property {string|null} text the text (or a file's caption, '' without); null until a reloaded envelope is opened again
 * @property {object|null} payload what is sealed: `{type: 'text', text}` or a `file` payload; null like `text`
 * @property {string[]} [blobs] the blob ids the `send` frame names (a file message)
 * @property {string} queued ISO time
 * @property {number|null} n
 * @property {number} order queue position in this tab
 * @property {'waiting'|'sealing'|'ready'|'inflight'|'retry'|'blocked'|'failed'} state
 * @property {string|null} error why it is blocked or failed
 * @property {string|null} notice what changed when it was sealed again (device-notices.js)
 */

export class Sender extends EventTarget {
  /**
   * @param {object} deps
   * @param {{id: number, username: string}} deps.me
   * @param {import('./messages.js').Messenger} deps.messenger
   * @param {{recipientsOf: Function}} deps.directory
   * @param {import('./rosters.js').RosterStore} deps.rosters
   * @param {import('./counters.js').Counters} deps.counters
   * @param {import('./outbox.js').Outbox} deps.outbox
   * @param {{send: (frame: object) => boolean, isOnline: () => boolean}} deps.transport
   * @param {(id: number) => object|undefined} deps.conversation the conversation object by id
   * @param {(conv: object, sent: {id, seq, created, client_msg_id, n, text, payload}) => Promise<void>|void} deps.onSent
   * @param {(conv: object) => void} [deps.onFiled] the last acknowledged message being filed in `conv` is filed
   */
  constructor({ me, deviceId, messenger, directory, rosters, counters, outbox, transport, conversation, onSent, onFiled = () => {}, locks = globalThis.navigator?.locks ?? null }) {
    super();
    Object.assign(this, { me, deviceId, messenger, directory, rosters, counters, outbox, transport, conversation, onSent, onFiled, locks });
    /** @type {Map<string, Pending>} */
    this.items = new Map();
    this.order = 0;
    this.toSeal = [];
    this.sealingNow = 0;
    this.holding = new Set();
    this.waiter = null;
    this.tokens = BURST;
    this.refilled = Date.now();
    this.timer = null;
    /** @type {Map<string, number>} client_msg_id -> conversation of acknowledged messages being filed */
    this.filing = new Map();
  }

  /** Take the outbox's items (this tab's before a reload, or another tab's) as pending. */
  async load() {
    for (const stored of this.outbox.list()) {
      const item = {
        client_msg_id: stored.client_msg_id,
        conversation: stored.conversation,
        text: null,
        payload: null,
        blobs: stored.blobs,
        queued: stored.queued,
        n: stored.n,
        order: this.order++,
        state: stored.n === null ? 'waiting' : 'ready',
        error: null,
        notice: null,
        seals: 0,
        sentAt: 0,
      };
      this.items.set(item.client_msg_id, item);
    }
    await Promise.all([...this.items.values()].map(async (item) => {
      item.payload = await this.messenger.reopenOwnPayload(item.conversation, item.client_msg_id, this.outbox.get(item.client_msg_id).envelope);
      if (item.payload === null) return this.fail(item, 'This message could not be opened again to send it.');
      item.text = item.payload.text ?? '';
      return this.changed(item.conversation);
    }));
    this.pumpAll();
  }

  /** Pending messages of a conversation, in the order they go out. */
  pendingIn(conversationId) {
    return [...this.items.values()]
      .filter((item) => item.conversation === conversationId)
      .sort((a, b) => (a.n ?? Infinity) - (b.n ?? Infinity) || a.order - b.order);
  }

  /**
   * Queue a text: it is pending at once and goes out after the messages queued before
   * it. Throws for an empty or over-long text.
   * @returns {Pending}
   */
  sendText(conv, text) {
    if (!text.trim()) throw new Error('A message needs some text.');
    if (Array.from(text).length > MAX_TEXT_CHARS) throw new Error(`A message is at most ${MAX_TEXT_CHARS} characters.`);
    return this.sendPayload(conv, textMessage(text));
  }

  /**
   * Queue any payload (`text`, or `file` with the uploaded blob ids in `blobs`, which
   * the `send` frame names); like sendText otherwise.
   * @returns {Pending}
   */
  sendPayload(conv, payload, { blobs } = {}) {
    const item = {
      client_msg_id: newClientMsgId(),
      conversation: conv.id,
      text: payload.text ?? '',
      payload,
      ...(blobs?.length ? { blobs } : {}),
      queued: new Date().toISOString(),
      order: this.order++,
      n: null,
      state: 'waiting',
      error: null,
      notice: null,
      seals: 0,
      sentAt: 0,
    };
    this.items.set(item.client_msg_id, item);
    this.changed(conv.id);
    this.pump(conv.id);
    return item;
  }

  /**
   * Seal `item` for the conversation's verified members and store it in the outbox;
   * `force` refetches the members' device lists first.
   */
  async seal(item, { force = false } = {}) {
    item.state = 'sealing';
    this.changed(item.conversation);
    const conv = this.conversation(item.conversation);
    try {
      if (!conv) throw new NotSendable('This conversation is gone.', 'left');
      if (item.seals > MAX_SEALS) return this.fail(item, 'The server kept refusing this message.');
      if (item.n === null) item.n = await this.counters.next(conv.id);
      await this.rosters.settled(conv.id);
      const { usernames, head } = this.rosters.targets(conv);
      const names = usernames.includes(this.me.username) ? usernames : [...usernames, this.me.username];
      const { keys, problems } = await this.directory.recipientsOf(names, { force });
      if (problems.length) throw new NotSendable(`Not sent: ${problems.map((p) => p.detail || `a problem with ${p.username}’s keys`).join(' ')}`, 'keys');
      const envelope = await this.messenger.seal({
        conversationId: conv.id,
        clientMsgId: item.client_msg_id,
        payload: item.payload,
        n: item.n,
        head,
        recipientKeys: keys,
      });
      if (!this.items.has(item.client_msg_id)) return undefined; // discarded meanwhile
      await this.outbox.put({ conversation: conv.id, client_msg_id: item.client_msg_id, n: item.n, envelope, queued: item.queued, blobs: item.blobs });
      item.state = 'ready';
      item.error = null;
    } catch (error) {
      if (error instanceof NotSendable) {
        item.state = 'blocked';
        item.error = error.message;
      } else {
        return this.fail(item, 'Could not encrypt this message.');
      }
    }
    this.changed(item.conversation);
    this.pump(item.conversation);
    return undefined;
  }

  fail(item, reason) {
    item.state = 'failed';
    item.error = reason;
    this.outbox.remove(item.client_msg_id).catch(() => {});
    this.changed(item.conversation);
  }

  /** Send what may go now, for every conversation. */
  pumpAll() {
    for (const id of new Set([...this.items.values()].map((item) => item.conversation))) this.pump(id);
  }

  /**
   * Move the conversation's messages along. In a browser with Web Locks this runs under
   * the lock `e2ee-chat-send:<device>:<conversation>` until nothing is left to number,
   * seal or acknowledge: tabs of one profile share the device, so one at a time numbers
   * and sends (numbers then rise in the order the server stores them, and a tab's
   * messages keep their order). Without Web Locks (node tests) it steps at once.
   */
  pump(conversationId) {
    if (!this.locks) {
      this.step(conversationId);
      return;
    }
    if (this.holding.has(conversationId)) {
      this.signal();
      return;
    }
    if (!this.busy(conversationId)) return;
    this.holding.add(conversationId);
    this.locks.request(`e2ee-chat-send:${this.deviceId}:${conversationId}`, async () => {
      try {
        while (this.busy(conversationId) && (this.transport.isOnline() || this.unsealed(conversationId))) {
          const progress = this.progress();
          this.step(conversationId);
          await progress;
        }
      } finally {
        this.holding.delete(conversationId);
      }
    }).catch(() => this.holding.delete(conversationId));
  }

  /**
   * Number the waiting messages in queue order (each number stored first), seal them a
   * few at a time in that order (the first goes out while later ones are sealed), send
   * what may go.
   */
  step(conversationId) {
    for (const item of this.pendingIn(conversationId)) {
      if (item.state !== 'waiting') continue;
      item.state = 'sealing';
      this.counters.next(conversationId).then( // opened now: numbers follow queue order
        (n) => {
          item.n = n;
          this.toSeal.push(item);
          this.sealSome();
        },
        () => this.fail(item, 'Could not store this device’s message counter.'),
      );
    }
    this.transmit(conversationId);
  }

  sealSome() {
    while (this.sealingNow < SEAL_AT_ONCE && this.toSeal.length) {
      const item = this.toSeal.shift();
      this.sealingNow += 1;
      this.seal(item).finally(() => {
        this.sealingNow -= 1;
        this.sealSome();
      });
    }
  }

  /** Whether the conversation has messages to number, seal, send or see acknowledged. */
  busy(conversationId) {
    return [...this.items.values()].some((item) => item.conversation === conversationId && ACTIVE.has(item.state));
  }

  unsealed(conversationId) {
    return [...this.items.values()].some((item) => item.conversation === conversationId && (item.state === 'waiting' || item.state === 'sealing'));
  }

  /** A promise of the next change (a seal done, an ack, an error, a timer). */
  progress() {
    if (!this.waiter) {
      let resolve;
      const promise = new Promise((r) => {
        resolve = r;
      });
      this.waiter = { promise, resolve };
    }
    return this.waiter.promise;
  }

  signal() {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve();
  }

  /**
   * Send the conversation's sealed messages in `n` order: each goes once every message
   * before it is in flight or acknowledged; a message still waiting, sealing or blocked
   * holds the ones after it.
   */
  transmit(conversationId) {
    const now = Date.now();
    for (const item of this.pendingIn(conversationId)) {
      if (item.state === 'failed' || item.state === 'inflight') continue;
      if (item.state === 'waiting' || item.state === 'sealing' || item.state === 'blocked') return;
      if (item.state === 'retry' && now < item.retryAt) return this.later(item.retryAt - now);
      if (!this.transport.isOnline()) return;
      if (!this.takeToken()) return this.later(1000 / PER_SECOND);
      const stored = this.outbox.get(item.client_msg_id);
      if (!stored) return this.fail(item, 'This message was lost before it was sent.');
      const frame = { type: 'send', conversation: stored.conversation, client_msg_id: stored.client_msg_id, envelope: stored.envelope };
      if (stored.blobs?.length) frame.blobs = stored.blobs;
      if (!this.transport.send(frame)) {
        this.tokens += 1;
        return undefined;
      }
      item.state = 'inflight';
      item.sentAt = now;
    }
    return undefined;
  }

  takeToken() {
    const now = Date.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilled) / 1000) * PER_SECOND);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  later(ms) {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.signal();
      this.pumpAll();
    }, Math.max(10, ms));
  }

  /** The socket (re)opened: whatever was in flight may be lost; send it again in order. */
  onOpen() {
    for (const item of this.items.values()) if (item.state === 'inflight') item.state = 'ready';
    this.pumpAll();
  }

  /** Send again what waited too long for its ack (same envelope, same id). */
  resendStale() {
    const now = Date.now();
    let any = false;
    for (const item of this.items.values()) {
      if (item.state === 'inflight' && now - item.sentAt > RESEND_AFTER) {
        item.state = 'ready';
        any = true;
      }
    }
    if (any) this.pumpAll();
  }

  /** An `ack`: the message is stored; it leaves the outbox and is filed as sent. */
  async onAck(frame) {
    const item = this.items.get(frame.client_msg_id);
    if (!item) return;
    this.items.delete(frame.client_msg_id);
    const conv = this.conversation(item.conversation);
    const files = Boolean(conv) && item.payload !== null;
    // until it is filed from here, its `message` frame (fanned out to this connection
    // too) and a sync's copy need not be opened: `filing` says so
    if (files) this.filing.set(frame.client_msg_id, item.conversation);
    try {
      await this.outbox.remove(frame.client_msg_id);
      if (files) {
        await this.onSent(conv, { id: frame.id, seq: frame.seq, created: frame.created, client_msg_id: frame.client_msg_id, n: item.n, text: item.text, payload: item.payload });
      }
    } finally {
      this.filing.delete(frame.client_msg_id);
    }
    if (files && !this.filingIn(item.conversation)) this.onFiled(conv);
    this.changed(item.conversation);
    this.pump(item.conversation);
  }

  /** Whether acknowledged messages of the conversation are still being filed. */
  filingIn(conversationId) {
    for (const id of this.filing.values()) if (id === conversationId) return true;
    return false;
  }

  /** A message of this device was filed from another copy (another tab sent it): not pending any more. */
  settled(clientMsgId) {
    const item = this.items.get(clientMsgId);
    if (!item) return;
    this.items.delete(clientMsgId);
    this.outbox.remove(clientMsgId).catch(() => {});
    this.changed(item.conversation);
  }

  /** An `error` frame naming one of this device's messages. */
  async onError(frame) {
    const item = this.items.get(frame.client_msg_id);
    if (!item || item.state !== 'inflight') return;
    const conv = this.conversation(item.conversation);
    item.seals += 1;
    switch (frame.code) {
      case 'rate_limited':
        item.state = 'retry';
        item.retryAt = Date.now() + RATE_LIMIT_WAIT;
        this.tokens = 0;
        this.later(RATE_LIMIT_WAIT);
        return;
      case 'stale_counter':
        item.state = 'sealing';
        try {
          item.n = await this.counters.next(item.conversation, Number.isSafeInteger(frame.n) ? frame.n : 0);
        } catch {
          this.fail(item, 'Could not store this device’s message counter.');
          return;
        }
        await this.seal(item);
        return;
      case 'stale_roster':
        item.state = 'sealing';
        if (conv) {
          try {
            await this.rosters.refresh(conv, { head: frame.head ?? undefined });
          } catch {
            /* offline: sealing again below tells */
          }
        }
        await this.seal(item);
        return;
      case 'stale_devices':
        await this.seal(item, { force: true });
        // after the refetch: who the added and removed devices belong to (device-notices.js)
        item.notice = deviceChangeText({ added: this.directory.devicesByKid?.(frame.missing) ?? [], removed: this.directory.devicesByKid?.(frame.extra) ?? [] });
        this.changed(item.conversation);
        return;
      case 'not_member':
        this.fail(item, 'You are not a member of this conversation.');
        return;
      default:
        this.fail(item, frame.detail || frame.code || 'The server refused this message.');
    }
  }

  /**
   * Seal again the blocked messages (of one conversation, or all): a problem may be
   * resolved (keys accepted, roster verified, a new member's name known).
   */
  retryBlocked(conversationId = null) {
    for (const item of this.items.values()) {
      if (item.state === 'blocked' && (conversationId === null || item.conversation === conversationId)) this.seal(item, { force: true });
    }
  }

  /** Try a failed or blocked message again (the person asked to). */
  retry(clientMsgId) {
    const item = this.items.get(clientMsgId);
    if (!item || !['failed', 'blocked'].includes(item.state) || item.payload === null) return undefined;
    item.seals = 0;
    return this.seal(item, { force: true });
  }

  /** Drop a message that was not sent. */
  discard(clientMsgId) {
    const item = this.items.get(clientMsgId);
    if (!item || item.state === 'inflight') return;
    this.items.delete(clientMsgId);
    this.outbox.remove(clientMsgId).catch(() => {});
    this.changed(item.conversation);
    this.pump(item.conversation);
  }

  changed(conversationId) {
    this.signal();
    this.dispatchEvent(new CustomEvent('change', { detail: conversationId }));
  }
}
