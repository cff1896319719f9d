/**
 * What this browser has seen of each user's devices (trust on first use), kept in
 * IndexedDB, with a locally kept "verified" mark per device and alerts for changes:
 * `added` and `removed` devices must be acknowledged; `replaced` (same device id, other
 * keys) is blocking: nothing is sent to that user until the user accepts it.
 * @module trust
 */

import { getItem, setItem } from './store.js';

export class Trust extends EventTarget {
  constructor(myUserId, myDeviceId = null) {
    super();
    this.myUserId = myUserId;
    this.myDeviceId = myDeviceId;
    this.key = `trust:${myUserId}`;
    this.state = { users: {}, alerts: [] };
    this.nextId = 1;
  }

  async load() {
    const saved = await getItem(this.key);
    if (saved) this.state = saved;
    this.nextId = Math.max(0, ...this.state.alerts.map((a) => a.id)) + 1;
    return this;
  }

  save() {
    return setItem(this.key, this.state);
  }

  known(username) {
    return this.state.users[username];
  }

  /**
   * Compare a user's active devices with what was seen before; record new alerts.
   * The first sight of a user is trusted silently. Returns the new alerts.
   */
  async observe(user, devices, { silent = false } = {}) {
    const thisDevice = user.id === this.myUserId ? this.myDeviceId : null;
    const known = this.state.users[user.username];
    const fresh = [];
    const now = new Date().toISOString();
    if (!known) {
      this.state.users[user.username] = {
        id: user.id,
        devices: Object.fromEntries(devices.map((d) => [d.id, entry(d, now)])),
      };
    } else {
      const seen = known.devices;
      const activeIds = new Set(devices.map((d) => String(d.id)));
      for (const device of devices) {
        const before = seen[device.id];
        if (!before) {
          seen[device.id] = entry(device, now);
          fresh.push(this.alert('added', user.username, device));
        } else if (before.enc_kid !== device.enc_kid || before.sig_kid !== device.sig_kid) {
          const pending = this.state.alerts.find((a) => !a.acknowledged && a.kind === 'replaced' && a.device.id === device.id && a.device.enc_kid === device.enc_kid && a.device.sig_kid === device.sig_kid);
          if (!pending) fresh.push(this.alert('replaced', user.username, device, before));
        }
      }
      for (const id of Object.keys(seen)) {
        if (!activeIds.has(id)) {
          fresh.push(this.alert('removed', user.username, seen[id]));
          delete seen[id];
        }
      }
    }
    for (const alert of fresh) {
      // This browser's own new device is no news to its user.
      if (silent || (alert.kind === 'added' && alert.device.id === thisDevice)) alert.acknowledged = true;
    }
    this.state.alerts.push(...fresh);
    if (fresh.length || !known) await this.save();
    if (fresh.length) this.dispatchEvent(new CustomEvent('change', { detail: fresh }));
    return fresh;
  }

  alert(kind, username, device, before = null) {
    return {
      id: this.nextId++,
      kind,
      username,
      device: { id: device.id, name: device.name, enc_kid: device.enc_kid, sig_kid: device.sig_kid },
      before: before && { enc_kid: before.enc_kid, sig_kid: before.sig_kid },
      at: new Date().toISOString(),
      acknowledged: false,
    };
  }

  /** Unacknowledged alerts about any of these usernames. */
  pending(usernames) {
    const names = new Set(usernames);
    return this.state.alerts.filter((a) => !a.acknowledged && names.has(a.username));
  }

  /** Whether an unaccepted key replacement blocks sending to this user. */
  blocked(username) {
    return this.state.alerts.some((a) => !a.acknowledged && a.kind === 'replaced' && a.username === username);
  }

  /** Acknowledge alerts; an accepted replacement stores the new keys, unverified. */
  async acknowledge(ids) {
    const wanted = new Set(ids);
    for (const alert of this.state.alerts) {
      if (!wanted.has(alert.id) || alert.acknowledged) continue;
      alert.acknowledged = true;
      if (alert.kind === 'replaced') {
        const user = this.state.users[alert.username];
        if (user) user.devices[alert.device.id] = entry(alert.device, new Date().toISOString());
      }
    }
    this.state.alerts = this.state.alerts.filter((a) => !a.acknowledged || Date.now() - Date.parse(a.at) < 30 * 86400000);
    await this.save();
    this.dispatchEvent(new CustomEvent('change', { detail: [] }));
  }

  async setVerified(username, deviceId, verified) {
    const device = this.state.users[username]?.devices[deviceId];
    if (!device) return;
    device.verified = verified;
    await this.save();
    this.dispatchEvent(new CustomEvent('change', { detail: [] }));
  }

  isVerified(username, device) {
    const seen = this.state.users[username]?.devices[device.id];
    return Boolean(seen?.verified && seen.enc_kid === device.enc_kid && seen.sig_kid === device.sig_kid);
  }
}

function entry(device, now) {
  return { name: device.name, enc_kid: device.enc_kid, sig_kid: device.sig_kid, first_seen: now, verified: false };
}
