/**
 * Whom this device may encrypt to and whose signatures it takes as genuine (PROTOCOL
 * §7.4). For each user it fetches the identity listing and the device list (revoked
 * included), checks them (identity.js), records what it saw with trust.js, and then
 * answers from the accepted identity only:
 *
 * * `recipientsOf(usernames)`: the encryption keys of devices whose cert verifies under
 *   the user's accepted identity (users not upgraded: their proof-checked devices), and
 *   the problems that mean "send nothing to this conversation";
 * * `senderKey(message)`: the signing key of a message's device, if that device is the
 *   sender's, certified by her accepted (or an earlier) identity and active when the
 *   message was created;
 * * `recordSigner(userId, sigKid)`: the signing key for a roster record (§8).
 *
 * This is the seam the conversation code (chat.js, messages.js, rosters) calls; it
 * never fixes a failed check up: a failed check is a problem or a null.
 * @module directory
 */

import { api } from './api.js';
import { KeyCache, checkUser } from './identity.js';

/**
 * A roster record is signed by a device that only an identity change not accepted yet
 * certifies: the record cannot be judged until the person accepts (or refuses) that
 * change. Not a bad signature: the group is waiting, not tampered.
 */
export class IdentityPendingError extends Error {
  constructor(userId, username) {
    super(`${username ?? `user ${userId}`}’s new identity is not accepted yet`);
    this.name = 'IdentityPendingError';
    this.code = 'identity_pending';
    this.userId = userId;
  }
}

/** Allowed clock difference between a device's `created` and a message's. */
const CLOCK_SLACK_MS = 1000;

export class Directory extends EventTarget {
  /**
   * @param {{me: {id: number, username: string}, trust: import('./trust.js').Trust}} deps
   */
  constructor({ me, trust }) {
    super();
    this.me = me;
    this.trust = trust;
    this.cache = new KeyCache();
    /** username -> Promise of the checked entry */
    this.entries = new Map();
    /** username -> the last checked entry (synchronous reads by the views) */
    this.latest = new Map();
    /** user id -> username, from every entry seen */
    this.usernames = new Map();
    trust.addEventListener('change', () => this.reevaluate());
  }

  /** A user's checked listing (`checkUser`'s result), fetched once unless `force`. */
  load(username, { force = false } = {}) {
    if (force || !this.entries.has(username)) {
      const pending = this.fetch(username);
      this.entries.set(username, pending);
      pending.catch(() => {
        if (this.entries.get(username) === pending) this.entries.delete(username);
      });
    }
    return this.entries.get(username);
  }

  /** Refetch a user (after `devices_changed`), then tell listeners. */
  async refresh(username) {
    const entry = await this.load(username, { force: true });
    this.dispatchEvent(new CustomEvent('change', { detail: { username } }));
    return entry;
  }

  async fetch(username) {
    const [identityBody, devicesBody] = await Promise.all([api.userIdentity(username), api.userDevices(username, true)]);
    const entry = await checkUser(identityBody, devicesBody, this.cache);
    if (entry.user.username !== username) throw new Error('the server answered for another user');
    this.usernames.set(entry.user.id, username);
    const active = entry.devices.filter((d) => !d.revoked && d.valid);
    await this.trust.observe({
      user: entry.user,
      current: entry.current,
      invalid: entry.invalid,
      upgradeBy: entry.upgradeBy,
      v1SigKids: entry.current || entry.invalid ? [] : active.filter((d) => !d.certBy).map((d) => d.sig_kid),
    });
    this.latest.set(username, entry);
    this.trust.noteDevices(entry.user, this.evaluate(entry).problems.filter((p) => p.device).map(({ kind, device }) => ({ kind, device })));
    return entry;
  }

  /** Device problems again for every known user (after the person accepted a change). */
  reevaluate() {
    for (const entry of this.latest.values()) {
      this.trust.noteDevices(entry.user, this.evaluate(entry).problems.filter((p) => p.device).map(({ kind, device }) => ({ kind, device })));
    }
  }

  /**
   * A checked entry judged against the trust state: `{mode, usable, problems}` where
   * `mode` is `identity` (accepted identity), `not_upgraded`, or `blocked` (a pending
   * identity change), `usable` the active devices that may be encrypted to, and
   * `problems` `[{kind, username, detail, device?}]`.
   */
  evaluate(entry) {
    const { user } = entry;
    const record = this.trust.record(user.id);
    const own = user.id === this.me.id;
    const active = entry.devices.filter((d) => !d.revoked);
    if (!record || record.pending) {
      return {
        mode: 'blocked',
        usable: [],
        problems: [{ kind: 'identity_changed', username: user.username, detail: `${user.username}’s identity changed and is not accepted yet` }],
      };
    }
    const accepted = record.id_kid;
    const good = accepted ? (d) => d.valid && d.certBy === accepted : (d) => d.valid;
    const usable = active.filter(good);
    const problems = active.filter((d) => !good(d)).map((device) => ({
      kind: own ? 'own_uncertified_device' : 'uncertified_device',
      username: user.username,
      detail: accepted
        ? `${own ? 'your' : `${user.username}’s`} device “${device.name}” is not certified by ${own ? 'your' : 'their'} identity`
        : `${user.username}’s device “${device.name}” failed its key checks`,
      device,
    }));
    return { mode: accepted ? 'identity' : 'not_upgraded', usable, problems };
  }

  /** The last fetched entry's judgement, or null (synchronous, for the views). */
  statusOf(username) {
    const entry = this.latest.get(username);
    return entry ? { entry, ...this.evaluate(entry) } : null;
  }

  /**
   * Encryption keys of every device this device may encrypt to for these users
   * (`{keys: {encKid: CryptoKey}, problems}`); any problem means "send nothing to this
   * conversation". `force` refetches the lists (after `stale_devices`).
   */
  async recipientsOf(usernames, { force = false } = {}) {
    const entries = await Promise.all([...new Set(usernames)].map((name) => this.load(name, { force })));
    const keys = {};
    const problems = [];
    for (const entry of entries) {
      const { usable, problems: found } = this.evaluate(entry);
      problems.push(...found.map(({ kind, username, detail, device }) => ({ kind, username, detail, ...(device ? { deviceId: device.id } : {}) })));
      for (const device of usable) keys[device.enc_kid] = await this.cache.encryptionKey(device);
    }
    return { keys, problems };
  }

  /**
   * The signing key for a stored message, `{key, note}` or null: the device named by
   * `sender_device` must hold `envelope.sig_kid`, belong to `sender_id` (checked against
   * the listing), pass its key checks, have been active at `created`, and be certified
   * by the sender's accepted identity (note null), by an identity she had before (note
   * `earlier_identity`, null if this device had accepted that one), or (a user not
   * upgraded, or a v1 envelope from a v1 device this device knew) be proof-checked only
   * (note `not_upgraded`). Refetches once when the device is not listed.
   */
  async senderKey(message) {
    for (const force of [false, true]) {
      let entry;
      try {
        entry = await this.load(message.sender, { force });
      } catch {
        return null;
      }
      if (entry.user.id !== message.sender_id) return null;
      const device = entry.devices.find((d) => d.id === message.sender_device && d.sig_kid === message.envelope?.sig_kid);
      if (device) return this.judgeSender(entry, device, message);
    }
    return null;
  }

  async judgeSender(entry, device, message) {
    if (!device.valid) return null;
    const created = Date.parse(message.created);
    if (!Number.isFinite(created)) return null;
    if (Date.parse(device.created) > created + CLOCK_SLACK_MS) return null;
    if (device.revoked && Date.parse(device.revoked) < created) return null;
    const record = this.trust.record(entry.user.id);
    if (!record) return null;
    const key = () => this.cache.signingKey(device);
    if (record.id_kid) {
      if (device.certBy === record.id_kid) return { key: await key(), note: null };
      if (device.certBy && entry.previous.some((p) => p.kid === device.certBy)) {
        return { key: await key(), note: record.earlier.includes(device.certBy) ? null : 'earlier_identity' };
      }
      if (!device.certBy && message.envelope?.v === 1 && record.v1.includes(device.sig_kid)) return { key: await key(), note: 'not_upgraded' };
      return null;
    }
    if (record.pending) return null;
    return { key: await key(), note: 'not_upgraded' };
  }

  /**
   * For roster records (§8): the signing key of `userId`'s device holding `sigKid`,
   * certified by her accepted identity or one she had before, revoked since or not;
   * null otherwise. While an identity change of hers is pending, a device certified by
   * the new identity rejects with IdentityPendingError (wait, do not call it tampered).
   */
  async recordSigner(userId, sigKid) {
    let username = this.usernames.get(userId) ?? this.trust.record(userId)?.username ?? null;
    if (!username) {
      try {
        const owner = await api.keyOwner(sigKid);
        if (owner?.user?.id !== userId) return null;
        username = owner.user.username;
      } catch {
        return null;
      }
    }
    for (const force of [false, true]) {
      let entry;
      try {
        entry = await this.load(username, { force });
      } catch {
        return null;
      }
      if (entry.user.id !== userId) return null;
      const device = entry.devices.find((d) => d.sig_kid === sigKid);
      if (!device) continue;
      const record = this.trust.record(userId);
      if (device.valid && device.certBy && record?.pending && device.certBy === record.pending.id_kid) {
        throw new IdentityPendingError(userId, entry.user.username);
      }
      if (!device.valid || !device.certBy || !record?.id_kid || record.pending) return null;
      const earlier = entry.previous.some((p) => p.kid === device.certBy);
      if (device.certBy !== record.id_kid && !earlier) return null;
      return this.cache.signingKey(device);
    }
    return null;
  }

  /**
   * What the last fetched lists say of the devices with these encryption kids, for the
   * wording of device changes (device-notices.js): `{own, username, name, certified, revoked}`
   * (certified: true by the accepted identity, null for a user not upgraded, else
   * false), or null for a kid no list holds.
   */
  devicesByKid(kids) {
    return (kids ?? []).map((kid) => {
      for (const entry of this.latest.values()) {
        const device = entry.devices.find((d) => d.enc_kid === kid);
        if (!device) continue;
        const { mode, usable } = this.evaluate(entry);
        const certified = mode === 'not_upgraded' && usable.includes(device) ? null : mode === 'identity' && usable.includes(device);
        return { own: entry.user.id === this.me.id, username: entry.user.username, name: device.name, certified, revoked: Boolean(device.revoked) };
      }
      return null;
    });
  }

  /** Own devices listed without a cert from my identity (for the security page). */
  async ownUncertified() {
    const entry = await this.load(this.me.username);
    return this.evaluate(entry).problems.filter((p) => p.kind === 'own_uncertified_device').map((p) => p.device);
  }
}
