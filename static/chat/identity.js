/**
 * Checking what the server lists about a user (PROTOCOL §1, §7): the identity key and
 * the ones it replaced (kid recomputed from the SPKI, proof verified), and each device
 * (kids recomputed, proof of possession verified, cert verified under the current or a
 * previous identity). Nothing here decides trust: trust.js does, from these results.
 * Public keys are imported once per kid and verification results are remembered per
 * exact input, so a refetch costs little.
 * @module identity
 */

import { api } from './api.js';
import {
  b64decode,
  computeKid,
  importEncryptionKey,
  importIdentityKey,
  importSigningKey,
  verifyDeviceCert,
  verifyDeviceProof,
  verifyIdentityProof,
  verifyIdentityUpgrade,
} from './protocol.js';

/** Imported public keys by kid, and remembered verification results. */
export class KeyCache {
  constructor() {
    this.identity = new Map();
    this.signing = new Map();
    this.encryption = new Map();
    this.checks = new Map();
  }

  identityKey(kid, spki) {
    if (!this.identity.has(kid)) this.identity.set(kid, importIdentityKey(spki));
    return this.identity.get(kid);
  }

  /** The RSA-PSS key of a checked device (its `sig_spki` hashes to its `sig_kid`). */
  signingKey(device) {
    if (!this.signing.has(device.sig_kid)) this.signing.set(device.sig_kid, importSigningKey(b64decode(device.sig_spki)));
    return this.signing.get(device.sig_kid);
  }

  /** The RSA-OAEP key of a checked device. */
  encryptionKey(device) {
    if (!this.encryption.has(device.enc_kid)) this.encryption.set(device.enc_kid, importEncryptionKey(b64decode(device.enc_spki)));
    return this.encryption.get(device.enc_kid);
  }

  /** `fn()` (a boolean promise) once per `key`; any throw counts as false. */
  remember(key, fn) {
    if (!this.checks.has(key)) this.checks.set(key, fn().then(Boolean, () => false));
    return this.checks.get(key);
  }
}

/**
 * A listed identity `{id_spki, id_kid, proof, upgrade, created, replaced?}` checked for
 * `userId`: the kid is SHA-256 of the SPKI, the key an allowed RSA key, the proof
 * verifies. Resolves `{kid, spki, publicKey, upgrade, created, replaced}` or null.
 */
export async function checkIdentity(userId, listed, cache = new KeyCache()) {
  try {
    const spki = b64decode(listed.id_spki);
    const kid = await computeKid(spki);
    if (kid !== listed.id_kid) return null;
    const publicKey = await cache.identityKey(kid, spki);
    const ok = await cache.remember(`id|${userId}|${kid}|${listed.proof}`, () => verifyIdentityProof(publicKey, userId, listed.proof));
    if (!ok) return null;
    return { kid, spki, publicKey, upgrade: listed.upgrade ?? null, created: listed.created ?? null, replaced: listed.replaced ?? null };
  } catch {
    return null;
  }
}

/**
 * A listed device checked for `userId` against `identities` (checked identities, the
 * current one first): `{...device, valid, certBy}` where `valid` says the kids match the
 * SPKIs and the proof verifies, and `certBy` is the kid of the identity whose cert
 * verifies for it (null when none does).
 */
export async function checkDevice(userId, device, identities, cache = new KeyCache()) {
  let valid = false;
  let certBy = null;
  try {
    const [encKid, sigKid] = await Promise.all([computeKid(b64decode(device.enc_spki)), computeKid(b64decode(device.sig_spki))]);
    if (encKid === device.enc_kid && sigKid === device.sig_kid && encKid !== sigKid) {
      const sigPublic = await cache.signingKey(device);
      valid = await cache.remember(`proof|${userId}|${encKid}|${sigKid}|${device.proof}`, () => verifyDeviceProof(sigPublic, userId, encKid, sigKid, device.proof));
    }
    if (valid && typeof device.cert === 'string' && device.cert) {
      for (const identity of identities) {
        const ok = await cache.remember(`cert|${userId}|${identity.kid}|${encKid}|${sigKid}|${device.cert}`,
          () => verifyDeviceCert(identity.publicKey, userId, encKid, sigKid, device.cert));
        if (ok) {
          certBy = identity.kid;
          break;
        }
      }
    }
  } catch {
    valid = false;
  }
  return { ...device, valid, certBy };
}

/**
 * Check a user's identity listing (GET …/identity/) and device list (GET …/devices/,
 * revoked included). Resolves `{user, current, invalid, previous, devices, upgradeBy}`:
 * `current` the checked current identity or null, `invalid` when one was listed but
 * failed, `previous` the replaced identities that pass, `devices` each with `valid` and
 * `certBy`, `upgradeBy` the signing kid of a listed valid device under which the
 * current identity's §7.5 upgrade signature verifies (else null). Throws when the two
 * answers are about different users.
 */
export async function checkUser(identityBody, devicesBody, cache = new KeyCache()) {
  const user = identityBody?.user;
  const other = devicesBody?.user;
  if (!user || !other || user.id !== other.id || user.username !== other.username || !Number.isSafeInteger(user.id)) {
    throw new Error('the identity and device lists name different users');
  }
  const current = identityBody.identity ? await checkIdentity(user.id, identityBody.identity, cache) : null;
  const previous = (await Promise.all((identityBody.previous ?? []).map((p) => checkIdentity(user.id, p, cache)))).filter(Boolean);
  const identities = [current, ...previous].filter(Boolean);
  const devices = await Promise.all((devicesBody.devices ?? []).map((d) => checkDevice(user.id, d, identities, cache)));
  let upgradeBy = null;
  const upgrade = current?.upgrade;
  if (upgrade && typeof upgrade === 'object') {
    const device = devices.find((d) => d.valid && d.sig_kid === upgrade.sig_kid);
    if (device) {
      const sigPublic = await cache.signingKey(device);
      const ok = await cache.remember(`upgrade|${user.id}|${current.kid}|${upgrade.sig_kid}|${upgrade.sig}`,
        () => verifyIdentityUpgrade(sigPublic, user.id, current.kid, upgrade));
      if (ok) upgradeBy = device.sig_kid;
    }
  }
  return { user, current, invalid: Boolean(identityBody.identity) && !current, previous, devices, upgradeBy };
}

/**
 * A user's identity as the server lists it now, checked: `{user, current, invalid,
 * previous}` (see checkUser).
 */
export async function readIdentity(username, cache = new KeyCache()) {
  const body = await api.userIdentity(username);
  const current = body.identity ? await checkIdentity(body.user.id, body.identity, cache) : null;
  const previous = (await Promise.all((body.previous ?? []).map((p) => checkIdentity(body.user.id, p, cache)))).filter(Boolean);
  return { user: body.user, current, invalid: Boolean(body.identity) && !current, previous };
}
