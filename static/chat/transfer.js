/**
 * History for a newly linked device (PROTOCOL §7.3): for every message this device can
 * read, in every conversation the user is a current member of, newest first across
 * conversations, unwrap the content key with this device's key and wrap it for the new
 * device's encryption key; post the wraps in batches of at most 500 (and at most 200 KiB,
 * under the 256 KiB body limit) with `X-Device-Id`.
 *
 * One job per target device, kept in IndexedDB (`kv/transfer:<this device id>`): the
 * target's public key and, per conversation, the seq down to which everything is done.
 * A job survives reloads (an interrupted one resumes when the app starts), can be
 * cancelled and resumed, and runs in the background (awaits only; the app stays
 * usable). A Web Lock keeps two tabs from running the same job at once. Messages whose
 * key this device cannot unwrap, or that the target can already read, are skipped.
 * Events: `change` (detail {job, done}: `done` counts messages handled so far).
 * @module transfer
 */

import { api as defaultApi, ApiError } from './api.js';
import { b64decode, computeKid, importEncryptionKey, rewrapContentKey } from './protocol.js';
import { getItem, setItem } from './store.js';

/** Most wraps per POST (the server's limit). */
export const MAX_WRAPS = 500;
/**
 * Most bytes of wraps per POST: the body limit is 256 KiB (§6), which 500 wraps of a
 * 3072-bit key (about 545 bytes each) exceed; a batch is split to stay well below it.
 */
export const MAX_BODY = 200 * 1024;
const PAGE = 100;
const PARALLEL = 8;

export class HistoryTransfer extends EventTarget {
  /**
   * @param {{deviceId: number, keys: import('./protocol.js').DeviceKeys,
   *   conversations: () => Array<{id: number, last_seq: number}>,
   *   storage?: {get: Function, set: Function}, api?: object}} deps
   *   `conversations()` lists the conversations the user is a current member of.
   */
  constructor({ deviceId, keys, conversations, storage = { get: getItem, set: setItem }, api = defaultApi }) {
    super();
    Object.assign(this, { deviceId, keys, conversations, storage, api });
    this.key = `transfer:${deviceId}`;
    this.job = null;
    this.running = null;
    this.done = 0;
  }

  async load() {
    this.job = (await this.storage.get(this.key)) ?? null;
    this.done = this.job?.handled ?? 0;
    return this;
  }

  save() {
    return this.storage.set(this.key, this.job);
  }

  emit() {
    this.dispatchEvent(new CustomEvent('change', { detail: { job: this.job, done: this.done } }));
  }

  /**
   * Start copying history to `target` (`{id, name, enc_kid, enc_spki}` of the new
   * device). A job for another device that had not finished is replaced.
   */
  async start(target) {
    this.job = { target, state: 'running', cursors: {}, handled: 0, wrapped: 0, total: null, started: new Date().toISOString(), finished: null, error: null };
    this.done = 0;
    await this.save();
    this.emit();
    return this.run();
  }

  /** Resume a job that was cancelled, failed or interrupted by a reload. */
  async resume() {
    if (!this.job || this.job.state === 'done') return undefined;
    this.job.state = 'running';
    this.job.error = null;
    await this.save();
    this.emit();
    return this.run();
  }

  /** On app start: go on with a job a reload interrupted. */
  resumeIfInterrupted() {
    return this.job?.state === 'running' ? this.run() : Promise.resolve();
  }

  /** Stop after the batch in flight (its wraps are not counted); resumable. */
  async cancel() {
    if (!this.job || this.job.state !== 'running') return;
    this.job.state = 'cancelled';
    this.done = this.job.handled;
    await this.save();
    this.emit();
  }

  /** Forget the job (after it is done, or when the person gives up on it). */
  async dismiss() {
    if (this.job?.state === 'running') await this.cancel();
    this.job = null;
    await this.save();
    this.emit();
  }

  run() {
    if (!this.running) {
      this.running = this.locked(() => this.work())
        .catch(async (error) => {
          if (this.job && this.job.state === 'running') {
            this.job.state = 'failed';
            this.job.error = describe(error);
            await this.save();
            this.emit();
          }
        })
        .finally(() => {
          this.running = null;
        });
    }
    return this.running;
  }

  async locked(fn) {
    const locks = globalThis.navigator?.locks;
    if (!locks) return fn();
    return locks.request(`e2ee-chat-${this.key}`, { ifAvailable: true }, (lock) => (lock ? fn() : undefined));
  }

  async work() {
    const job = this.job;
    const target = await importEncryptionKey(b64decode(job.target.enc_spki));
    if ((await computeKid(b64decode(job.target.enc_spki))) !== job.target.enc_kid) throw new Error('the new device’s key does not match its kid');
    const convs = this.conversations();
    if (job.total === null) {
      job.total = convs.reduce((sum, c) => sum + (job.cursors[c.id]?.done ? 0 : c.last_seq ?? 0), 0);
      await this.save();
    }
    const streams = convs.map((c) => {
      const cursor = job.cursors[c.id] ?? { before: null, done: false };
      return { id: c.id, before: cursor.before, fetchBefore: cursor.before, exhausted: cursor.done || cursor.before === 1, buffer: [] };
    });
    this.done = job.handled;
    this.emit();
    for (;;) {
      if (this.job !== job || job.state !== 'running') return;
      const { items, taken } = await this.collect(streams, job);
      if (!taken.length) break;
      const wraps = await this.rewrapAll(items, target, job);
      if (this.job !== job || job.state !== 'running') return;
      const refused = await this.post(job, wraps, items);
      for (const { stream, seq } of taken) stream.before = stream.before === null ? seq : Math.min(stream.before, seq);
      for (const stream of streams) {
        const finished = refused.has(stream.id) || (stream.exhausted && !stream.buffer.length);
        if (finished) stream.exhausted = true;
        if (stream.before !== null || finished) job.cursors[stream.id] = { before: stream.before, done: finished };
      }
      job.handled += taken.length;
      job.wrapped += wraps.length - [...refused.values()].reduce((a, b) => a + b, 0);
      this.done = job.handled;
      await this.save();
      this.emit();
    }
    job.state = 'done';
    job.total = job.handled;
    job.finished = new Date().toISOString();
    this.done = job.handled;
    await this.save();
    this.emit();
  }

  /** The next messages, newest first across conversations: at most MAX_WRAPS to wrap. */
  async collect(streams, job) {
    const items = [];
    const taken = [];
    while (items.length < MAX_WRAPS && taken.length < MAX_WRAPS * 2) {
      await Promise.all(streams.filter((s) => !s.buffer.length && !s.exhausted).map((s) => this.fill(s)));
      if (this.job !== job || job.state !== 'running') break;
      let best = null;
      for (const stream of streams) {
        if (!stream.buffer.length) continue;
        if (!best || Date.parse(stream.buffer[0].created) > Date.parse(best.buffer[0].created)) best = stream;
      }
      if (!best) break;
      const message = best.buffer.shift();
      taken.push({ stream: best, seq: message.seq });
      if (this.readable(message, job.target.enc_kid)) items.push({ stream: best, message });
    }
    return { items, taken };
  }

  async fill(stream) {
    const page = await this.api.history(stream.id, { beforeSeq: stream.fetchBefore, limit: PAGE });
    const older = (page.messages ?? []).filter((m) => stream.fetchBefore === null || m.seq < stream.fetchBefore).sort((a, b) => b.seq - a.seq);
    stream.buffer.push(...older);
    if (older.length) stream.fetchBefore = older[older.length - 1].seq;
    if (!page.has_more || !older.length || stream.fetchBefore <= 1) stream.exhausted = true;
  }

  readable(message, targetKid) {
    const keys = message.envelope?.keys;
    return Boolean(keys && typeof keys === 'object' && Object.hasOwn(keys, this.keys.encKid) && !Object.hasOwn(keys, targetKid));
  }

  /** Wraps for the items this device can unwrap (PARALLEL at a time), in order. */
  async rewrapAll(items, target, job) {
    const wraps = new Array(items.length).fill(null);
    let next = 0;
    const base = this.done;
    let finished = 0;
    const worker = async () => {
      while (next < items.length && this.job === job && job.state === 'running') {
        const i = next++;
        try {
          wraps[i] = { message: items[i].message.id, ek: await rewrapContentKey(items[i].message.envelope, this.keys, target) };
        } catch {
          wraps[i] = null; // not readable here after all: nothing to hand over
        }
        finished += 1;
        if (finished % 50 === 0) {
          this.done = Math.min(base + finished, (job.total ?? Infinity));
          this.emit();
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    return wraps.map((w, i) => w && { ...w, conversation: items[i].stream.id }).filter(Boolean);
  }

  /**
   * POST the wraps, in requests of at most MAX_WRAPS wraps and MAX_BODY bytes. A
   * `not_member` refusal (a conversation left meanwhile) posts per conversation and
   * skips the refused ones. Resolves the map of refused conversation ids to their wrap
   * counts.
   */
  async post(job, wraps) {
    const refused = new Map();
    for (const chunk of chunks(wraps)) for (const [id, count] of await this.postChunk(job, chunk)) refused.set(id, (refused.get(id) ?? 0) + count);
    return refused;
  }

  async postChunk(job, wraps) {
    const refused = new Map();
    if (!wraps.length) return refused;
    const body = (list) => list.map(({ message, ek }) => ({ message, ek }));
    try {
      await this.api.historyKeys(job.target.id, body(wraps), this.deviceId);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'not_member')) throw error;
      const groups = new Map();
      for (const wrap of wraps) groups.set(wrap.conversation, [...(groups.get(wrap.conversation) ?? []), wrap]);
      for (const [id, list] of groups) {
        try {
          await this.api.historyKeys(job.target.id, body(list), this.deviceId);
        } catch (inner) {
          if (!(inner instanceof ApiError && inner.code === 'not_member')) throw inner;
          refused.set(id, list.length);
        }
      }
    }
    return refused;
  }
}

/** Wraps in requests of at most MAX_WRAPS items and about MAX_BODY bytes of JSON. */
function chunks(wraps) {
  const out = [];
  let current = [];
  let bytes = 0;
  for (const wrap of wraps) {
    const size = wrap.ek.length + String(wrap.message).length + 24;
    if (current.length && (current.length >= MAX_WRAPS || bytes + size > MAX_BODY)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(wrap);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

function describe(error) {
  if (error instanceof ApiError) {
    if (error.status === 404) return 'The new device is no longer active.';
    if (error.status === 0) return 'The server cannot be reached.';
    return error.detail || error.code;
  }
  return 'Something went wrong while copying.';
}
