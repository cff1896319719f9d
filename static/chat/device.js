/**
 * This browser as a device: set it up (make keys, register with proof, lock, store),
 * unlock it, reset it, import or export its key file, change its passphrase. The crypto
 * is protocol.js and keystore.js; this module orders the steps (PROTOCOL §3: make the
 * keys, register the device, then lock) and keeps the record in IndexedDB.
 * @module device
 */

import { api, ApiError } from './api.js';
import { KIND, KeystoreError, WrongPassphrase, changePassphrase as relock, lockKeystore, unlockKeystore } from './keystore.js';
import { b64encode, generateDeviceKeys, signDeviceProof } from './protocol.js';
import { deleteKeystore, getKeystore, putKeystore } from './store.js';

export { KeystoreError, WrongPassphrase };

/** A device name from the browser and platform, e.g. "Chrome on Linux". */
export function defaultDeviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const platform = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'this computer';
  return `${browser} on ${platform}`;
}

/** Start making a device's two RSA-3072 key pairs (a few seconds); resolves DeviceKeys. */
export function makeKeys(bits = 3072) {
  return generateDeviceKeys(bits);
}

export function storedRecord(userId) {
  return getKeystore(userId);
}

/**
 * Register keys as a new device of `me`, lock them under `passphrase`, store the record
 * and resolve {record, keys} with non-extractable private keys. `onStep(name)` reports
 * 'keys', 'register', 'lock', 'check', 'done'.
 */
export async function setupDevice({ me, name, passphrase, keys: keysPromise, onStep = () => {} }) {
  onStep('keys');
  const fresh = await (keysPromise ?? makeKeys());
  onStep('register');
  const device = await api.registerDevice({
    name,
    enc_spki: b64encode(fresh.encSpki),
    sig_spki: b64encode(fresh.sigSpki),
    proof: await signDeviceProof(fresh, me.id),
  });
  onStep('lock');
  const record = await lockKeystore(fresh, { userId: me.id, username: me.username, deviceId: device.id, passphrase });
  await putKeystore(record);
  onStep('check');
  const keys = await unlockKeystore(record, passphrase);
  onStep('done');
  return { record, keys, device };
}

/** Unlock the stored record; WrongPassphrase leaves everything as it was. */
export async function unlock(record, passphrase) {
  return unlockKeystore(record, passphrase);
}

/** This device's server-side state: 'active', 'revoked' or 'missing'. */
export async function deviceStatus(record) {
  const { devices } = await api.myDevices();
  const device = devices.find((d) => d.id === record.device_id);
  if (!device || device.enc_kid !== record.enc_kid || device.sig_kid !== record.sig_kid) return 'missing';
  return device.revoked ? 'revoked' : 'active';
}

/**
 * New keys and a new device for this browser, then the old device is revoked (if it is
 * still active); the old record is replaced.
 */
export async function resetDevice({ me, oldRecord, name, passphrase, keys, onStep }) {
  const result = await setupDevice({ me, name, passphrase, keys, onStep });
  if (oldRecord && oldRecord.device_id !== result.record.device_id) {
    try {
      await api.revokeDevice(oldRecord.device_id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  }
  return result;
}

/** Forget this browser's keystore (the device stays registered until revoked). */
export function forget(userId) {
  return deleteKeystore(userId);
}

export class ImportError extends Error {}

/**
 * Read a key file (the §3 JSON), unlock it with its passphrase, check it is an active
 * device of `me`, and store it as this browser's record. Resolves {record, keys}.
 */
export async function importKeyFile({ me, text, passphrase }) {
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    throw new ImportError('This file is not a key file (not JSON).');
  }
  if (!record || record.kind !== KIND || record.v !== 1) throw new ImportError('This file is not an e2ee-chat key file.');
  if (record.user_id !== me.id) throw new ImportError(`This key file belongs to ${String(record.username ?? 'another user')}, not ${me.username}.`);
  const keys = await unlockKeystore(record, passphrase);
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
