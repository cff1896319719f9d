/**
 * What this device has decided about each user's identity (PROTOCOL §7.4), kept in
 * IndexedDB (`kv/trust:<my user id>`):
 *
 * * the accepted identity kid per user id (trust on first use) and the person's
 *   "verified" mark, the identities accepted before it (`earlier`), and a pending
 *   **identity change** (a different identity listed, none listed any more, an invalid
 *   one, or the name now on another account) that blocks sending until accepted;
 * * for users never seen with an identity ("not upgraded"), the signing kids of their
 *   v1 devices, so a later identity whose §7.5 upgrade signature verifies under one of
 *   them is accepted without a warning (anything else is an identity change);
 * * which user id each username belonged to (a name that moves to another account is
 *   an identity change too).
 *
 * Device problems (a listed device that the accepted identity did not certify) are not
 * decisions: the Directory reports them with `noteDevices` and they live in memory.
 * `noticesFor(usernames)` turns both into the notices the conversation view shows.
 * Events: `change` whenever a decision, a pending change or a device problem changes.
 * @module trust
 */

import { getItem, setItem } from './store.js';

const STATE_VERSION = 2;

/** A fresh record for a user seen for the first time. */
function freshRecord(username, now) {
  return { username, id_kid: null, verified: false, earlier: [], pending: null, v1: [], first_seen: now };
}

/**
 * The v1 state (`{users: {username: {id, devices}}, alerts}`) as v2: each user not
 * upgraded, with the signing kids of the devices seen, so §7.5 continuity works for
 * contacts this browser knew under v1.
 */
export function migrateTrustState(saved) {
  if (saved?.v === STATE_VERSION) return saved;
  const state = { v: STATE_VERSION, users: {}, names: {} };
  for (const [username, known] of Object.entries(saved?.users ?? {})) {
    if (!Number.isSafeInteger(known?.id)) continue;
    const record = freshRecord(username, new Date().toISOString());
    record.v1 = Object.values(known.devices ?? {}).map((d) => d.sig_kid).filter((k) => typeof k === 'string');
    state.users[String(known.id)] = record;
    state.names[username] = known.id;
  }
  return state;
}

export class Trust extends EventTarget {
  /**
   * @param {number} myUserId
   * @param {{storage?: {get: Function, set: Function}, revokeDevice?: (id: number) => Promise<void>}} [options]
   *   `storage` replaces IndexedDB (tests); `revokeDevice` backs the "Revoke it" action.
   */
  constructor(myUserId, { storage = { get: getItem, set: setItem }, revokeDevice = null } = {}) {
    super();
    this.myUserId = myUserId;
    this.key = `trust:${myUserId}`;
    this.storage = storage;
    this.revokeDevice = revokeDevice;
    this.state = { v: STATE_VERSION, users: {}, names: {} };
    /** user id -> [{kind, device}] reported by the Directory (not persisted) */
    this.deviceProblems = new Map();
  }

  async load() {
    const saved = await this.storage.get(this.key);
    if (saved) {
      this.state = migrateTrustState(saved);
      if (saved.v !== STATE_VERSION) await this.save();
    }
    return this;
  }

  save() {
    return this.storage.set(this.key, this.state);
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }

  /** The record of a user id, or undefined. */
  record(userId) {
    return this.state.users[String(userId)];
  }

  /** The user id this device knows under `username`, or undefined. */
  userIdOf(username) {
    return this.state.names[username];
  }

  /**
   * This device's own identity: accepted and verified (the device holds its private
   * key). A different one than recorded (after a reset or a link) replaces it.
   */
  async pinSelf(me, idKid) {
    const now = new Date().toISOString();
    const record = this.record(me.id) ?? freshRecord(me.username, now);
    if (record.id_kid && record.id_kid !== idKid && !record.earlier.includes(record.id_kid)) record.earlier.push(record.id_kid);
    Object.assign(record, { username: me.username, id_kid: idKid, verified: true, pending: null });
    this.state.users[String(me.id)] = record;
    this.state.names[me.username] = me.id;
    await this.save();
    this.changed();
  }

  /**
   * Record what the server now lists for a user, checked by the Directory:
   * `current` is the listed identity whose proof verified (`{kid}`) or null;
   * `invalid` that an identity was listed but failed its checks; `upgradeBy` the signing
   * kid of a listed device under which the current identity's §7.5 upgrade signature
   * verified (or null); `v1SigKids` the signing kids of the user's active proof-checked
   * devices without a cert. Applies §7.4: first sight is accepted, a different identity
   * later (or none, or an invalid one) is a pending identity change. Resolves the record.
   */
  async observe({ user, current, invalid = false, upgradeBy = null, v1SigKids = [] }) {
    const uid = String(user.id);
    const now = new Date().toISOString();
    const before = JSON.stringify([this.state.users[uid] ?? null, this.state.names[user.username] ?? null]);
    const formerId = this.state.names[user.username];
    let record = this.state.users[uid];
    if (!record) {
      record = freshRecord(user.username, now);
      this.state.users[uid] = record;
      if (current) record.id_kid = current.kid;
      else if (invalid) record.pending = { reason: 'invalid', id_kid: null, since: now };
      else record.v1 = [...new Set(v1SigKids)];
      if (formerId !== undefined && formerId !== user.id) {
        // The name belonged to another account: not a first sight of this person.
        record.pending = { reason: 'account', id_kid: current?.kid ?? null, was: formerId, since: now };
        record.id_kid = null;
      } else {
        this.state.names[user.username] = user.id;
      }
    } else if (record.pending?.reason === 'account') {
      record.pending.id_kid = current?.kid ?? null;
    } else if (record.id_kid) {
      if (current?.kid === record.id_kid) {
        record.pending = null;
      } else if (!(record.pending && record.pending.id_kid === (current?.kid ?? null) && record.pending.reason === reasonOf(current, invalid))) {
        record.pending = { reason: reasonOf(current, invalid), id_kid: current?.kid ?? null, since: now };
      }
    } else if (current) {
      // Seen before without an identity: §7.5 continuity, or an identity change.
      if (record.pending?.id_kid === current.kid) {
        /* still pending */
      } else if ((upgradeBy && record.v1.includes(upgradeBy)) || (!record.v1.length && !record.pending)) {
        record.id_kid = current.kid;
        record.pending = null;
      } else {
        record.pending = { reason: 'no_continuity', id_kid: current.kid, since: now };
      }
    } else if (invalid) {
      if (record.pending?.reason !== 'invalid') record.pending = { reason: 'invalid', id_kid: null, since: now };
    } else {
      record.pending = null;
      record.v1 = [...new Set([...record.v1, ...v1SigKids])];
    }
    record.username = user.username;
    if (formerId === undefined) this.state.names[user.username] = user.id; // e.g. a record adopted from a link
    if (JSON.stringify([record, this.state.names[user.username] ?? null]) !== before) {
      await this.save();
      this.changed();
    }
    return record;
  }

  /** Whether a pending identity change blocks sending to this user id. */
  isBlocked(userId) {
    return Boolean(this.record(userId)?.pending);
  }

  /** Whether a pending change can be accepted (an invalid identity cannot). */
  canAccept(userId) {
    const pending = this.record(userId)?.pending;
    return Boolean(pending && pending.reason !== 'invalid');
  }

  /**
   * The person accepts a user's pending identity change: the listed identity becomes the
   * accepted one (unverified), the old one moves to `earlier`. Nothing else changes.
   */
  async accept(userId) {
    const record = this.record(userId);
    if (!record?.pending || record.pending.reason === 'invalid') return;
    const { id_kid: kid, reason } = record.pending;
    if (record.id_kid && !record.earlier.includes(record.id_kid)) record.earlier.push(record.id_kid);
    record.id_kid = kid;
    record.verified = false;
    record.pending = null;
    if (reason === 'account') this.state.names[record.username] = Number(userId);
    if (!kid && reason === 'removed') record.v1 = [];
    await this.save();
    this.changed();
  }

  /** The person's "verified" mark for a user's accepted identity. */
  async setVerified(userId, verified) {
    const record = this.record(userId);
    if (!record?.id_kid) return;
    record.verified = Boolean(verified);
    await this.save();
    this.changed();
  }

  isVerified(userId) {
    const record = this.record(userId);
    return Boolean(record?.id_kid && record.verified && !record.pending);
  }

  /** §7.2 trust state to hand to a newly linked device: accepted identities and marks. */
  exportState() {
    const identities = {};
    for (const [uid, record] of Object.entries(this.state.users)) {
      if (/^[0-9]+$/.test(uid) && record.id_kid) identities[uid] = { id_kid: record.id_kid, verified: Boolean(record.verified) };
    }
    return { identities };
  }

  /**
   * Adopt the trust state an approving device sent (§7.2 step 4): its accepted identity
   * wins over an older local one (which moves to `earlier`); verified marks carry over.
   */
  async adopt(trust) {
    const now = new Date().toISOString();
    for (const [uid, { id_kid: kid, verified }] of Object.entries(trust?.identities ?? {})) {
      if (!/^[0-9]+$/.test(uid)) continue;
      const record = this.state.users[uid] ?? freshRecord(null, now);
      if (record.id_kid && record.id_kid !== kid && !record.earlier.includes(record.id_kid)) record.earlier.push(record.id_kid);
      record.verified = record.id_kid === kid ? record.verified || verified : verified;
      record.id_kid = kid;
      record.pending = null;
      this.state.users[uid] = record;
    }
    await this.save();
    this.changed();
  }

  /**
   * The Directory's report of a user's listed devices that cannot be trusted
   * (`[{kind: 'uncertified_device' | 'own_uncertified_device', device}]`); kept in memory.
   */
  noteDevices(user, problems) {
    const key = String(user.id);
    const before = JSON.stringify(this.deviceProblems.get(key) ?? []);
    const now = problems.map(({ kind, device }) => ({ kind, device: { id: device.id, name: device.name, created: device.created } }));
    if (now.length) this.deviceProblems.set(key, now);
    else this.deviceProblems.delete(key);
    if (JSON.stringify(now) !== before) this.changed();
  }

  /**
   * [username, user id] pairs for these names: the account each name belongs to here,
   * and any other account now answering to it with a pending change.
   */
  idsFor(usernames) {
    const pairs = [];
    for (const username of new Set(usernames)) {
      const ids = new Set();
      if (this.state.names[username] !== undefined) ids.add(String(this.state.names[username]));
      for (const [uid, record] of Object.entries(this.state.users)) {
        if (record.username === username && record.pending?.reason === 'account') ids.add(uid);
      }
      for (const uid of ids) if (this.record(uid)) pairs.push([username, Number(uid)]);
    }
    return pairs;
  }

  /**
   * The notices for a conversation with these users: `{kind, username, blocking, text,
   * actions}` where kind is `identity_changed`, `uncertified_device`,
   * `own_uncertified_device` (all blocking: nothing is sent) or `not_upgraded` (info).
   * Each action is `{label, run, danger?, confirm?}` or `{label, href}`.
   */
  noticesFor(usernames) {
    const notices = [];
    for (const [username, uid] of this.idsFor(usernames)) {
      const record = this.record(uid);
      const own = uid === this.myUserId;
      const safety = { label: 'Compare safety numbers', href: `/security/?contact=${encodeURIComponent(username)}` };
      if (record.pending) {
        const actions = [];
        if (record.pending.reason !== 'invalid') {
          actions.push({
            label: 'Accept new safety number',
            danger: true,
            confirm: `Only accept if you expected this (for example ${username} reset their account) or have compared the new safety number with ${username}.`,
            run: () => this.accept(uid),
          });
        }
        if (!own && record.pending.id_kid) actions.push(safety);
        notices.push({ kind: 'identity_changed', username, blocking: true, text: changeText(username, record.pending, own), actions });
        continue;
      }
      for (const { kind, device } of this.deviceProblems.get(String(uid)) ?? []) {
        const name = device.name ? `“${device.name}”` : `device ${device.id}`;
        if (kind === 'own_uncertified_device') {
          notices.push({
            kind,
            username,
            blocking: true,
            deviceId: device.id,
            text: `A device on your account was not certified by your identity: ${name}. If you did not add it, someone may be trying to read your messages. Nothing is sent until it is revoked or linked.`,
            actions: this.revokeDevice ? [{ label: 'Revoke it', danger: true, confirm: `Revoke ${name}? It is signed out at once.`, run: () => this.revokeDevice(device.id) }] : [],
          });
        } else {
          notices.push({
            kind,
            username,
            blocking: true,
            deviceId: device.id,
            text: `${username}’s account lists a device that ${username}’s identity did not certify (${name}). Someone may be trying to read your messages. Nothing is sent to this conversation while it is listed.`,
            actions: [safety],
          });
        }
      }
      if (!record.id_kid && !own) {
        notices.push({ kind: 'not_upgraded', username, blocking: false, text: `${username} has not upgraded: messages use ${username}’s device keys as before, without a safety number.`, actions: [] });
      }
    }
    return notices;
  }
}

function reasonOf(current, invalid) {
  if (current) return 'changed';
  return invalid ? 'invalid' : 'removed';
}

function changeText(username, pending, own) {
  if (own) return 'The server lists a different identity for your own account. Someone may have reset it. Nothing is sent until this is resolved.';
  switch (pending.reason) {
    case 'invalid':
      return `The server lists an identity for ${username} that fails its checks. Nothing is sent to ${username}.`;
    case 'removed':
      return `${username}’s account no longer lists an identity key. Sending to ${username} is paused until you accept this.`;
    case 'account':
      return `The name ${username} now belongs to a different account than before. Sending to ${username} is paused until you accept the new safety number.`;
    default:
      return `${username}’s safety number changed. ${username} may have reset their account, or someone may be trying to intercept your messages. Sending to ${username} is paused until you accept the new safety number.`;
  }
}
