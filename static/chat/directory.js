/**
 * Users' device lists with their public keys, as the server reports them, each checked
 * here before use: the kids are recomputed from the SPKI and the proof of possession
 * (PROTOCOL §1) is verified. Devices that fail are kept out of every list.
 * @module directory
 */

import { api } from './api.js';
import { b64decode, computeKid, importEncryptionKey, importSigningKey, verifyDeviceProof } from './protocol.js';

export class Directory {
  constructor() {
    /** username -> Promise<{user, devices: [...all, revoked included], rejected: [...]}> */
    this.entries = new Map();
    /** username -> the last entry fetched (for synchronous reads by the views) */
    this.latest = new Map();
    this.encKeys = new Map();
    this.sigKeys = new Map();
  }

  /** The user's devices (revoked ones included), fetched once unless `force`. */
  load(username, { force = false } = {}) {
    if (force || !this.entries.has(username)) {
      const pending = this.fetch(username);
      this.entries.set(username, pending);
      pending.then((entry) => this.latest.set(username, entry), () => this.entries.delete(username));
    }
    return this.entries.get(username);
  }

  async fetch(username) {
    const { user, devices } = await api.userDevices(username, true);
    const checked = await Promise.all(devices.map((device) => this.check(user, device)));
    return {
      user,
      devices: devices.filter((_, i) => checked[i]),
      rejected: devices.filter((_, i) => !checked[i]),
    };
  }

  async check(user, device) {
    try {
      const encSpki = b64decode(device.enc_spki);
      const sigSpki = b64decode(device.sig_spki);
      const [encKid, sigKid] = await Promise.all([computeKid(encSpki), computeKid(sigSpki)]);
      if (encKid !== device.enc_kid || sigKid !== device.sig_kid) return false;
      const sigPublic = await this.signingKey(device);
      return await verifyDeviceProof(sigPublic, user.id, encKid, sigKid, device.proof);
    } catch {
      return false;
    }
  }

  /** The last fetched active devices of a user, or null if not fetched yet. */
  cachedActive(username) {
    const entry = this.latest.get(username);
    return entry ? entry.devices.filter((d) => !d.revoked) : null;
  }

  /** Active devices of the user that passed the checks. */
  async active(username, options) {
    const entry = await this.load(username, options);
    return { user: entry.user, devices: entry.devices.filter((d) => !d.revoked), rejected: entry.rejected.filter((d) => !d.revoked) };
  }

  encryptionKey(device) {
    if (!this.encKeys.has(device.enc_kid)) {
      this.encKeys.set(device.enc_kid, importEncryptionKey(b64decode(device.enc_spki)));
    }
    return this.encKeys.get(device.enc_kid);
  }

  signingKey(device) {
    if (!this.sigKeys.has(device.sig_kid)) {
      this.sigKeys.set(device.sig_kid, importSigningKey(b64decode(device.sig_spki)));
    }
    return this.sigKeys.get(device.sig_kid);
  }

  /**
   * The verification key for a stored message: the sender's device named by
   * `sender_device`, holding `envelope.sig_kid`, owned by `sender_id`, and active when
   * the message was created. Refetches once when the device is unknown. Null if none.
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
      if (device) {
        const created = Date.parse(message.created);
        if (Date.parse(device.created) > created + 1000) return null;
        if (device.revoked && Date.parse(device.revoked) < created) return null;
        if (await this.distrusted(message, entry)) return null;
        return { key: await this.signingKey(device), note: null };
      }
    }
    return null;
  }

  /**
   * Trust on first use for senders too (with `this.trust`): a device this browser saw
   * with other keys is refused until the person accepts the change (a `replaced` alert);
   * one it has not seen is noted as an `added` alert first.
   */
  async distrusted(message, entry) {
    const known = this.trust?.known(message.sender);
    const seen = known?.devices?.[message.sender_device];
    if (!known || (seen && seen.sig_kid === message.envelope.sig_kid)) return false;
    await this.trust.observe(entry.user, entry.devices.filter((d) => !d.revoked));
    return this.trust.pending([message.sender]).some((a) => a.kind === 'replaced' && a.device.id === message.sender_device);
  }

  // --- the seam with the rosters lane (docs/browser.md). Smallest versions over today's
  // proof-checked device lists; the identity lane's (certificates, accepted identities)
  // replace them. --------------------------------------------------------------------

  /**
   * The encryption keys of every device this client may encrypt to for these users,
   * and the problems that forbid sending to them at all: `{keys: {encKid: CryptoKey},
   * problems: [{kind, username, detail}]}`. `force` refetches the device lists (after
   * `stale_devices`). Device-set changes are noted with `this.trust` when set.
   */
  async recipientsOf(usernames, { force = false } = {}) {
    const lists = await Promise.all([...new Set(usernames)].map((name) => this.active(name, { force })));
    const keys = {};
    const problems = [];
    for (const { user, devices, rejected } of lists) {
      if (this.trust) {
        await this.trust.observe(user, devices);
        if (this.trust.blocked(user.username)) {
          problems.push({ kind: 'identity_changed', username: user.username, detail: `The keys of a device of ${user.username} changed. Review the warning before sending.` });
        }
      }
      if (rejected.length) {
        problems.push({ kind: user.username === this.me ? 'own_uncertified_device' : 'uncertified_device', username: user.username, detail: `A device of ${user.username} failed its key checks.` });
      }
      for (const device of devices) keys[device.enc_kid] = await this.encryptionKey(device);
    }
    return { keys, problems };
  }

  /**
   * The signing key of the device of user `userId` that holds `sigKid`, revoked since or
   * not, for checking a roster record; null if there is none that passes the checks.
   */
  async recordSigner(userId, sigKid) {
    let owner;
    try {
      owner = await api.keyOwner(sigKid);
    } catch {
      return null;
    }
    if (owner?.user?.id !== userId) return null;
    for (const force of [false, true]) {
      let entry;
      try {
        entry = await this.load(owner.user.username, { force });
      } catch {
        return null;
      }
      if (entry.user.id !== userId) return null;
      const device = entry.devices.find((d) => d.sig_kid === sigKid);
      if (device) return this.signingKey(device);
    }
    return null;
  }
}
