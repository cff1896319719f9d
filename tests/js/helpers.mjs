// Shared by the node:test files: the Python-made vectors and the fixed test keys.
import { readFileSync } from 'node:fs';
import { b64decode, b64encode, deviceKeysFromPkcs8 } from '../../static/chat/protocol.js';

const VECTORS = new URL('../vectors/', import.meta.url);

/** Parse tests/vectors/<name>. */
export function vector(name) {
  return JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8'));
}

/** The fixed test devices of keys.json as DeviceKeys with extractable private keys. */
export async function fixedKeys() {
  const stored = vector('keys.json');
  const entries = await Promise.all(
    Object.entries(stored).map(async ([name, entry]) => [
      name,
      await deviceKeysFromPkcs8(b64decode(entry.enc_pkcs8), b64decode(entry.sig_pkcs8), { extractable: true }),
    ]),
  );
  return Object.fromEntries(entries);
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
