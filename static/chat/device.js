/**
 * This browser as a device of its user (PROTOCOL §3, §7): the first device of an
 * account (makes the identity key), a reset (a new identity that signs every other
 * device out), the §7.5 upgrade of a v1 keystore, unlocking, importing and exporting
 * the key file, changing the passphrase. The crypto is protocol.js and keystore.js;
 * this module orders the steps so a failure halfway leaves nothing half-done that the
 * next attempt cannot finish (the identity is locked in the keystore before it is
 * published; the keystore is stored only once the device is registered).
 *
 * Keys in memory ("app keys"): the device's two private keys are non-extractable; the
 * identity private key stays extractable, because approving a new device (§7.2) hands
 * it over in `id_wrap`. Nothing unlocked is ever written anywhere.
 * @module device
 */

import { api, ApiError } from './api.js';
import { KIND, KeystoreError, WrongPassphrase, changePassphrase as relock, lockKeystore, unlockKeystore } from './keystore.js';
import {
  b64encode,
  deviceKeysFromPkcs8,
  generateDeviceKeys,
  generateIdentityKey,
  signDeviceCert,
  signDeviceProof,
  signIdentityProof,
  signIdentityUpgrade,
  verifyDeviceCert,
} from './protocol.js';
import { checkIdentity, readIdentity } from './identity.js';
import { deleteKeystore, getKeystore, putKeystore } from './store.js';

export { KeystoreError, WrongPassphrase };

const subtle = globalThis.crypto.subtle;

/** A device name from the browser and platform, e.g. "Chrome on Linux". */
export function defaultDeviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const platform = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'this computer';
  return `${browser} on ${platform}`;
}

/** Start making a device's two RSA key pairs (a few seconds); resolves extractable DeviceKeys. */
export function makeKeys(bits = 3072) {
  return generateDeviceKeys(bits);
}

/** Start making an identity key pair (RSA-PSS); resolves an extractable identity pair. */
export function makeIdentity(bits = 3072) {
  return generateIdentityKey(bits);
}

export function storedRecord(userId) {
  return getKeystore(userId);
}

/**
 * The keys the app holds: device private keys non-extractable, the identity private key
 * (if any) extractable (to wrap it for a new device). `keys` must be extractable.
 */
export async function appKeys(keys) {
  const [enc, sig] = await Promise.all([subtle.exportKey('pkcs8', keys.encPrivate), subtle.exportKey('pkcs8', keys.sigPrivate)]);
  const device = await deviceKeysFromPkcs8(new Uint8Array(enc), new Uint8Array(sig), null, { extractable: false });
  return keys.identity ? device.withIdentity(keys.identity) : device;
}

function deviceBody(keys, name, proof, cert) {
  return { name, enc_spki: b64encode(keys.encSpki), sig_spki: b64encode(keys.sigSpki), proof, cert };
}

/**
 * Make (or reset) the user's identity and register this browser as a device certified
 * by it, then lock and store the v2 keystore. Resolves {record, keys, device}; `keys`
 * are app keys. `replace` resets the account (§7.1): every other device is revoked and
 * contacts see a safety-number change. `onStep(name)` reports 'keys', 'identity',
 * 'register', 'lock', 'check', 'done'. `keys` and `identity` may be promises made
 * early (while the form is filled in); the same ones may be passed again on a retry.
 */
export async function setupDevice({ me, name, passphrase, keys: keysPromise, identity: identityPromise, replace = false, onStep = () => {} }) {
  onStep('keys');
  const [fresh, identity] = await Promise.all([keysPromise ?? makeKeys(), identityPromise ?? makeIdentity()]);
  const keys = await fresh.withIdentity(identity);
  onStep('identity');
  await api.putIdentity({ id_spki: b64encode(identity.spki), proof: await signIdentityProof(identity, me.id), ...(replace ? { replace: true } : {}) });
  onStep('register');
  const cert = await signDeviceCert(identity, me.id, keys.encKid, keys.sigKid);
  const device = await api.registerDevice(deviceBody(keys, name, await signDeviceProof(keys, me.id), cert));
  onStep('lock');
  const record = await lockKeystore(keys, { userId: me.id, username: me.username, deviceId: device.id, passphrase });
  await putKeystore(record);
  onStep('check');
  const unlocked = await unlockKeystore(record, passphrase, { extractable: true });
  const app = await appKeys(unlocked);
  onStep('done');
  return { record, keys: app, device };
}

/** Unlock a record with extractable keys (to reconcile, relock or upgrade it). */
export function unlockExtractable(record, passphrase) {
  return unlockKeystore(record, passphrase, { extractable: true });
}

/** Unlock the stored record into app keys; WrongPassphrase leaves everything as it was. */
export async function unlock(record, passphrase) {
  return appKeys(await unlockKeystore(record, passphrase, { extractable: true }));
}

/**
 * This device's server-side state: `{status: 'active' | 'revoked' | 'missing', device}`
 * (`device` is the listed one, with its `cert`).
 */
export async function deviceState(record) {
  const { devices } = await api.myDevices();
  const device = devices.find((d) => d.id === record.device_id);
  if (!device || device.enc_kid !== record.enc_kid || device.sig_kid !== record.sig_kid) return { status: 'missing', device: null };
  return { status: device.revoked ? 'revoked' : 'active', device };
}

/** This device's server-side state: 'active', 'revoked' or 'missing'. */
export async function deviceStatus(record) {
  return (await deviceState(record)).status;
}

/**
 * After unlocking: bring this device in line with the user's identity (§7.5).
 * Resolves `{state: 'ready', record, keys}` when the device holds the current identity
 * and is certified by it (certifying it if needed); `{state: 'link', keys}` when the
 * user has an identity this device does not hold (link it with its existing keys);
 * `{state: 'gone', status}` when the device is revoked or unknown. A v1 device of a
 * user without an identity makes it: the v2 keystore is stored first, then the identity
 * is published with the upgrade signature by this device's signing key, then the device
 * is certified. `extractable` are the unlocked keys (extractable); `passphrase` locks
 * the upgraded record; `save` stores it (IndexedDB unless given).
 */
export async function reconcile({ me, record, keys: extractable, passphrase, onStep = () => {}, save = putKeystore }) {
  const { status, device } = await deviceState(record);
  if (status !== 'active') return { state: 'gone', status };
  let keys = extractable;
  let listing = await readIdentity(me.username);
  if (listing.invalid) throw new ApiError(409, 'bad_identity', 'the identity the server lists for your account fails its checks');
  if (!listing.current && !listing.invalid && !keys.identity && !device.cert) {
    onStep('identity');
    keys = await keys.withIdentity(await makeIdentity());
    record = await lockKeystore(keys, { userId: me.id, username: me.username, deviceId: record.device_id, passphrase, iterations: Math.max(record.kdf.iterations, 600000) });
    await save(record);
  }
  if (!listing.current && !listing.invalid && keys.identity && !device.cert) {
    const upgrade = await signIdentityUpgrade(keys, me.id, keys.idKid);
    try {
      await api.putIdentity({ id_spki: b64encode(keys.idSpki), proof: await signIdentityProof(keys.identity, me.id), upgrade });
    } catch (error) {
      // Another device of hers made the identity meanwhile: link to it instead.
      if (!(error instanceof ApiError && error.code === 'identity_exists')) throw error;
    }
    listing = await readIdentity(me.username);
  }
  if (!listing.current || listing.current.kid !== keys.idKid) return { state: 'link', keys };
  const certified = device.cert && (await verifyDeviceCert(listing.current.publicKey, me.id, keys.encKid, keys.sigKid, device.cert).catch(() => false));
  if (!certified) {
    onStep('certify');
    await api.certifyDevice(record.device_id, await signDeviceCert(keys.identity, me.id, keys.encKid, keys.sigKid));
  }
  return { state: 'ready', record, keys: await appKeys(keys) };
}

/** Forget this browser's keystore (the device stays registered until revoked). */
export function forget(userId) {
  return deleteKeystore(userId);
}

export class ImportError extends Error {}

/**
 * Read a key file (the §3 JSON, v1 or v2), unlock it with its passphrase, check it is
 * an active device of `me`, and store it as this browser's record. Resolves
 * {record, keys} with extractable keys (the caller reconciles them, then holds app keys).
 */
export async function importKeyFile({ me, text, passphrase }) {
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    throw new ImportError('This file is not a key file (not JSON).');
  }
  if (!record || record.kind !== KIND || (record.v !== 1 && record.v !== 2)) throw new ImportError('This file is not an e2ee-chat key file.');
  if (record.user_id !== me.id) throw new ImportError(`This key file belongs to ${String(record.username ?? 'another user')}, not ${me.username}.`);
  const keys = await unlockKeystore(record, passphrase, { extractable: true });
  const status = await deviceStatus(record);
  if (status !== 'active') throw new ImportError(status === 'revoked' ? 'The device of this key file has been revoked.' : 'The device of this key file is not registered to your account.');
  await putKeystore(record);
  return { record, keys };
}

/** The key file of a record: its JSON (PROTOCOL §3), as a Blob and a file name. */
export function keyFile(record) {
  const blob = new Blob([JSON.stringify(record, null, 2) + '\n'], { type: 'application/json' });
  return { blob, filename: `e2ee-chat-${record.username}-device-${record.device_id}.json` };
}

/** Re-lock the stored record under a new passphrase; WrongPassphrase changes nothing. */
export async function changePassphrase(record, oldPassphrase, newPassphrase) {
  const updated = await relock(record, oldPassphrase, newPassphrase);
  await putKeystore(updated);
  return updated;
}

/**
 * The user's identity as listed, checked (`{user, current, invalid, previous}`), and
 * whether the user has active devices: what the no-device screen offers depends on it.
 */
export async function accountState(me) {
  const [listing, { devices }] = await Promise.all([readIdentity(me.username), api.myDevices()]);
  return { listing, activeDevices: devices.filter((d) => !d.revoked) };
}

export { ApiError, checkIdentity };
