/**
 * Linking a device to the account (PROTOCOL §7.2), both sides:
 *
 * * the new device (`requestLink`, `waitForApproval`, `completeLink`): reads and checks
 *   the user's identity, asks to join with its own keys, shows the link code computed
 *   from that identity and its kids, waits for the approval, opens `id_wrap`, checks
 *   that the identity received is the one in its code and that its registration is
 *   certified by it, adopts the approver's trust state and locks the v2 keystore;
 * * an existing device (`LinkInbox`): learns of requests (`link_request` frames and the
 *   list on start), computes the code from the request's kids and **its own** identity,
 *   and approves (cert + `id_wrap` with the identity key and its trust state) or denies.
 * @module link
 */

import { api, ApiError } from './api.js';
import { lockKeystore } from './keystore.js';
import {
  b64decode,
  b64encode,
  computeKid,
  importEncryptionKey,
  importSigningKey,
  linkCode,
  makeIdWrap,
  openIdWrap,
  signDeviceCert,
  signDeviceProof,
  verifyDeviceCert,
  verifyDeviceProof,
} from './protocol.js';
import { readIdentity } from './identity.js';
import { appKeys } from './device.js';
import { putKeystore } from './store.js';
import { Trust } from './trust.js';

/** How often the new device asks whether its request was approved (it has no socket yet). */
export const POLL_MS = 1000;

/** A link that cannot go on; `code` says why (see each function). */
export class LinkError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LinkError';
    this.code = code;
  }
}

// --- the new device --------------------------------------------------------------------

/**
 * Ask to join `me`'s account with `keys` (fresh, or a v1 device's own keys: §7.5).
 * Resolves `{request, code, idKid, keys}`; `code` is the 20-character link code to show.
 * LinkError `no_identity` when the account has no identity (or one that fails its
 * checks): nothing was sent then.
 */
export async function requestLink({ me, name, keys }) {
  const listing = await readIdentity(me.username);
  if (!listing.current) {
    throw new LinkError('no_identity', listing.invalid
      ? 'The server lists an identity for your account that fails its checks. This browser cannot be linked.'
      : 'Your account has no identity key yet, so there is nothing to link to.');
  }
  const { link_request: request } = await api.createLinkRequest({
    name,
    enc_spki: b64encode(keys.encSpki),
    sig_spki: b64encode(keys.sigSpki),
    proof: await signDeviceProof(keys, me.id),
  });
  if (request.enc_kid !== keys.encKid || request.sig_kid !== keys.sigKid) {
    throw new LinkError('mismatch', 'The server recorded other keys than this browser sent. Nothing was linked.');
  }
  const code = await linkCode(me.id, listing.current.kid, keys.encKid, keys.sigKid);
  return { request, code, idKid: listing.current.kid, keys };
}

/** The request of a `GET …/link-requests/<id>/` answer, with `device` and `id_wrap`. */
function linkRequestOf(body) {
  const request = body?.link_request ?? body;
  return { ...request, device: request?.device ?? body?.device ?? null, id_wrap: request?.id_wrap ?? body?.id_wrap ?? null };
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => {
    clearTimeout(timer);
    resolve();
  }, { once: true });
});

/**
 * Poll the request every `interval` ms until it is approved with an `id_wrap` (resolves
 * the request, with `device` and `id_wrap`). LinkError `denied`, `expired` (also a 404:
 * expired requests are deleted) or `cancelled` (the signal aborted).
 */
export async function waitForApproval(link, { signal, interval = POLL_MS } = {}) {
  for (;;) {
    if (signal?.aborted) throw new LinkError('cancelled', 'Linking was cancelled.');
    let request;
    try {
      request = linkRequestOf(await api.linkRequest(link.request.id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new LinkError('expired', 'The request expired before it was approved.');
      if (!(error instanceof ApiError) || error.status === 0) {
        await sleep(interval, signal);
        continue;
      }
      throw error;
    }
    if (request.status === 'approved' && request.id_wrap && request.device) return request;
    if (request.status === 'denied') throw new LinkError('denied', 'The request was denied on your other device.');
    if (Date.parse(request.expires) < Date.now()) throw new LinkError('expired', 'The request expired before it was approved.');
    await sleep(interval, signal);
  }
}

/** Withdraw a request this device made (best effort). */
export async function cancelLink(link) {
  try {
    await api.deleteLinkRequest(link.request.id);
  } catch {
    /* expired or already gone */
  }
}

/**
 * Finish on the new device (§7.2 step 4): open `approved.id_wrap`, check that the
 * identity's kid is the one in this device's code (LinkError `wrong_identity`: nothing
 * is stored), that the registered device holds this device's kids and a cert that
 * verifies under that identity (LinkError `bad_device`), then lock the v2 keystore under
 * `passphrase`, store it, and adopt the trust state (this device's own identity pinned).
 * Either way the approved request is then deleted, so the wrapped identity key does not
 * wait on the server until it expires. Resolves `{record, keys}` (app keys).
 */
export async function completeLink({ me, link, approved, passphrase, storage }) {
  try {
    return await finishLink({ me, link, approved, passphrase, storage });
  } finally {
    // The wrapped identity key need not wait on the server until the request expires.
    await cancelLink(link);
  }
}

async function finishLink({ me, link, approved, passphrase, storage }) {
  const { keys } = link;
  let opened;
  try {
    opened = await openIdWrap(approved.id_wrap, { userId: me.id, deviceKeys: keys, extractable: true });
  } catch {
    throw new LinkError('bad_wrap', 'The approval could not be opened by this browser. Nothing was stored.');
  }
  if (opened.identity.kid !== link.idKid) {
    throw new LinkError('wrong_identity', 'The identity your other device sent is not the one in the code shown here. Nothing was stored. Someone may have shown this browser a false identity.');
  }
  const device = approved.device;
  const certified = device && device.enc_kid === keys.encKid && device.sig_kid === keys.sigKid
    && typeof device.cert === 'string'
    && (await verifyDeviceCert(opened.identity.publicKey, me.id, keys.encKid, keys.sigKid, device.cert).catch(() => false));
  if (!certified || !Number.isSafeInteger(device.id)) {
    throw new LinkError('bad_device', 'The server registered this browser without a valid certificate. Nothing was stored.');
  }
  const full = await keys.withIdentity(opened.identity);
  const record = await lockKeystore(full, { userId: me.id, username: me.username, deviceId: device.id, passphrase });
  await putKeystore(record);
  const trust = await new Trust(me.id, storage ? { storage } : {}).load();
  await trust.adopt(opened.trust);
  await trust.pinSelf(me, opened.identity.kid);
  return { record, keys: await appKeys(full) };
}

// --- an existing device ------------------------------------------------------------------

/**
 * A request's keys checked: the kids recomputed from the SPKIs and the proof verified.
 * Resolves `{valid, encKid, sigKid}` (kids as recomputed, null when they do not parse).
 */
export async function checkRequest(userId, request) {
  try {
    const [encKid, sigKid] = await Promise.all([computeKid(b64decode(request.enc_spki)), computeKid(b64decode(request.sig_spki))]);
    if (encKid !== request.enc_kid || sigKid !== request.sig_kid || encKid === sigKid) return { valid: false, encKid, sigKid };
    const sigPublic = await importSigningKey(b64decode(request.sig_spki));
    return { valid: await verifyDeviceProof(sigPublic, userId, encKid, sigKid, request.proof), encKid, sigKid };
  } catch {
    return { valid: false, encKid: null, sigKid: null };
  }
}

/**
 * The link requests of this user that this device can approve. Events: `change`
 * (detail {request}: a request arrived, or one was approved, denied or expired).
 * Each entry: `{request, code, valid}`: `code` from the request's kids and this
 * device's own identity; `valid` false when its keys fail their checks (deny it).
 */
export class LinkInbox extends EventTarget {
  /**
   * @param {{me: object, deviceId: number, keys: import('./protocol.js').DeviceKeys,
   *   trust: import('./trust.js').Trust, socket?: EventTarget}} deps
   */
  constructor({ me, deviceId, keys, trust, socket = null }) {
    super();
    Object.assign(this, { me, deviceId, keys, trust, socket });
    /** request id -> entry */
    this.entries = new Map();
    this.seen = new Set();
    this.onFrame = (event) => this.frame(event.detail).catch(() => {});
  }

  /** Listen for frames and load the pending list (again after every reconnect). */
  async start() {
    if (this.socket) {
      this.socket.addEventListener('frame', this.onFrame);
      this.socket.addEventListener('open', () => this.refresh().catch(() => {}));
    }
    this.expiry = setInterval(() => this.dropExpired(), 5000);
    await this.refresh();
  }

  stop() {
    this.socket?.removeEventListener('frame', this.onFrame);
    clearInterval(this.expiry);
  }

  async refresh() {
    if (!this.keys.identity) return;
    const body = await api.linkRequests();
    const requests = body?.link_requests ?? body?.requests ?? [];
    const listed = new Set(requests.map((r) => r.id));
    for (const id of [...this.entries.keys()]) if (!listed.has(id)) this.remove(id);
    for (const request of requests) await this.add(request);
  }

  async frame(frame) {
    if (frame?.type === 'link_request' && frame.link_request) await this.add(frame.link_request);
    else if (frame?.type === 'link_done' && frame.link_request) this.remove(frame.link_request.id);
  }

  async add(request) {
    if (!this.keys.identity || !request || this.entries.has(request.id) || this.seen.has(request.id)) return;
    if ((request.status ?? 'pending') !== 'pending' || Date.parse(request.expires) < Date.now()) return;
    this.seen.add(request.id);
    const { valid, encKid, sigKid } = await checkRequest(this.me.id, request);
    const code = valid ? await linkCode(this.me.id, this.keys.idKid, encKid, sigKid) : null;
    this.entries.set(request.id, { request, code, valid });
    this.dispatchEvent(new CustomEvent('change', { detail: { request } }));
  }

  remove(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.dispatchEvent(new CustomEvent('change', { detail: { request: entry.request } }));
  }

  dropExpired() {
    for (const [id, entry] of this.entries) if (Date.parse(entry.request.expires) < Date.now()) this.remove(id);
  }

  /** Pending entries, oldest first. */
  pending() {
    return [...this.entries.values()].sort((a, b) => a.request.id - b.request.id);
  }

  get(id) {
    return this.entries.get(id);
  }

  /**
   * Approve a request (§7.2 step 3): cert for its kids and `id_wrap` with the identity
   * key and this device's trust state, sent with `X-Device-Id`. Resolves
   * `{device, target}` where `target` is what a history transfer needs
   * (`{id, name, enc_kid, enc_spki}`). Refuses a request whose keys failed their checks.
   */
  async approve(id) {
    const entry = this.entries.get(id);
    if (!entry) throw new LinkError('gone', 'This request is no longer pending.');
    if (!entry.valid) throw new LinkError('invalid', 'This request failed its key checks and cannot be approved.');
    const { request } = entry;
    const encPublic = await importEncryptionKey(b64decode(request.enc_spki));
    const [cert, idWrap] = await Promise.all([
      signDeviceCert(this.keys.identity, this.me.id, request.enc_kid, request.sig_kid),
      makeIdWrap(this.keys.identity, this.trust.exportState(), { userId: this.me.id, encPublic, sigKid: request.sig_kid }),
    ]);
    const { device } = await api.approveLinkRequest(id, { cert, id_wrap: idWrap }, this.deviceId);
    this.remove(id);
    return { device, target: { id: device.id, name: device.name ?? request.name, enc_kid: request.enc_kid, enc_spki: request.enc_spki } };
  }

  /** Deny a request (the new device is told). */
  async deny(id) {
    try {
      await api.deleteLinkRequest(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    this.remove(id);
  }
}
