// Shared by the node:test files and interop.mjs: the Python-made vectors, the fixed test
// keys, and the roster signing-key lookup a vector describes (twin of tests/vectors/known.py).
import { readFileSync } from 'node:fs';
import {
  b64decode, b64encode, deviceKeysFromPkcs8, importIdentityKey, importSigningKey, verifyDeviceCert,
} from '../../static/chat/protocol.js';

const VECTORS = new URL('../vectors/', import.meta.url);

/** Parse tests/vectors/<name>. */
export function vector(name) {
  return JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8'));
}

/**
 * The fixed test devices of keys.json as DeviceKeys with extractable private keys; those
 * stored with an identity hold it.
 */
export async function fixedKeys() {
  const stored = vector('keys.json');
  const entries = await Promise.all(
    Object.entries(stored).map(async ([name, entry]) => [
      name,
      await deviceKeysFromPkcs8(
        b64decode(entry.enc_pkcs8),
        b64decode(entry.sig_pkcs8),
        entry.id_pkcs8 ? b64decode(entry.id_pkcs8) : null,
        { extractable: true },
      ),
    ]),
  );
  return Object.fromEntries(entries);
}

/** A device of keys.json's enc key of `encName` and sig key of `sigName` (no identity). */
export function mixedDevice(encName, sigName) {
  const stored = vector('keys.json');
  return deviceKeysFromPkcs8(b64decode(stored[encName].enc_pkcs8), b64decode(stored[sigName].sig_pkcs8));
}

/** `b64` with one bit flipped in byte `index` (negative counts from the end). */
export function flip(b64, index = 0) {
  const bytes = b64decode(b64);
  bytes[index < 0 ? bytes.length + index : index] ^= 1;
  return b64encode(bytes);
}

/** A vector's context in the JS spelling. */
export function jsContext({ conversation_id, sender_id, client_msg_id }) {
  return { conversationId: conversation_id, senderId: sender_id, clientMsgId: client_msg_id };
}

/**
 * `signingKey(record)` for roster.verifyChain: the signing key of the device of
 * `record.by` that holds `sig_kid` and whose cert verifies under her identity, else null.
 * `devices` maps a user id to `[{enc_kid, sig_kid, sig_spki, cert}]`, `identities` a user
 * id to her identity's base64 SPKI. `calls` counts the lookups (one per by and kid).
 */
export function rosterSigningKey(devices, identities) {
  const lookup = async (record) => {
    lookup.calls += 1;
    const user = String(record.by);
    for (const device of devices[user] ?? []) {
      if (device.sig_kid !== record.sig_kid || !identities[user]) continue;
      const idPublic = await importIdentityKey(b64decode(identities[user]));
      if (await verifyDeviceCert(idPublic, record.by, device.enc_kid, device.sig_kid, device.cert)) {
        return importSigningKey(b64decode(device.sig_spki));
      }
    }
    return null;
  };
  lookup.calls = 0;
  return lookup;
}

/** The error code a promise rejects with, or 'ok' when it resolves. */
export async function outcome(promise) {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error.code ?? String(error);
  }
}
