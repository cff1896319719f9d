/**
 * Message crypto for the chat, on top of protocol.js: seal a payload as a v2 envelope
 * (§2) for the keys the caller chose, and open a stored message against its sender's
 * device key. Failures are results, never text.
 * @module messages
 */

import { FileRefused, validateFilePayload } from './attachments.js';
import { RELATION_TYPES, validatePayload } from './payloads.js';
import { OpenError, openEnvelope, ProtocolError, sealEnvelope } from './protocol.js';

/**
 * @typedef {object} Opened
 * @property {'ok'|'failed'|'not_for_device'|'unsupported'} status (`ok` also for a valid reaction, edit or delete: its `payload` only)
 * @property {string} [text] the text of a `text` payload, or the caption of a `file` one ('' without) (status ok)
 * @property {object} [file] the `file` object of a `file` payload (status ok), checked by validateFilePayload
 * @property {string} [fileRefused] a `file` payload whose fields fail the checks: the FileRefused code (no `file`)
 * @property {object} [payload] the decrypted payload (ok or unsupported)
 * @property {1|2} [v] the envelope version
 * @property {number|null} [n] the sender device's counter (v2)
 * @property {string} [head] the roster head the sender sealed under (v2)
 * @property {string} [sigKid] the sending device's signing kid
 * @property {string|null} [note] the directory's note on the sender's key
 * @property {string} [reason] why it failed
 */

export class Messenger {
  /** @param {{me: {id:number, username:string}, keys: import('./protocol.js').DeviceKeys, directory: {senderKey: Function}}} deps */
  constructor({ me, keys, directory }) {
    Object.assign(this, { me, keys, directory });
  }

  /**
   * A v2 envelope of `payload` (a plain object, e.g. `{type: 'text', text}`) with this
   * device's counter `n` and the roster `head`, for `recipientKeys` (enc kid ->
   * RSA-OAEP CryptoKey; this device's own key is added).
   * @returns {Promise<object>}
   */
  seal({ conversationId, clientMsgId, payload, n, head, recipientKeys }) {
    return sealEnvelope({
      plaintext: payload,
      conversationId,
      senderId: this.me.id,
      clientMsgId,
      n,
      head,
      senderKeys: this.keys,
      recipientKeys: { ...recipientKeys, [this.keys.encKid]: this.keys.encPublic },
    });
  }

  /**
   * Open a stored message (v2, or v1 as stored before the upgrade): its signature is
   * checked under the key the directory gives for its device (this device's own key for
   * its own messages). Never throws; see Opened.
   * @returns {Promise<Opened>}
   */
  async open(message) {
    const envelope = message.envelope;
    if (!envelope || typeof envelope.keys !== 'object' || envelope.keys === null) {
      return { status: 'failed', reason: 'malformed envelope' };
    }
    if (!Object.hasOwn(envelope.keys, this.keys.encKid)) {
      return { status: 'not_for_device', reason: 'not encrypted for this device' };
    }
    try {
      let sigPublic;
      let note = null;
      if (message.sender_id === this.me.id && envelope.sig_kid === this.keys.sigKid) {
        sigPublic = this.keys.sigPublic;
      } else {
        const found = await this.directory.senderKey(message);
        if (!found?.key) return { status: 'failed', reason: 'unknown or inactive sender device' };
        sigPublic = found.key;
        note = found.note ?? null;
      }
      const payload = await openEnvelope(envelope, {
        conversationId: message.conversation,
        senderId: message.sender_id,
        clientMsgId: message.client_msg_id,
        deviceKeys: this.keys,
        sigPublic,
      });
      const meta = { v: envelope.v, n: envelope.v === 2 ? envelope.n : null, head: envelope.v === 2 ? envelope.head : '', sigKid: envelope.sig_kid, note, payload };
      if (payload.type === 'text' && typeof payload.text === 'string') return { status: 'ok', text: payload.text, ...meta };
      if (payload.type === 'file') return { status: 'ok', ...fileFields(payload), ...meta };
      if (RELATION_TYPES.includes(payload.type) && isValid(payload)) return { status: 'ok', ...meta };
      return { status: 'unsupported', reason: `message type ${String(payload.type).slice(0, 40)}`, ...meta };
    } catch (error) {
      return { status: 'failed', reason: error instanceof OpenError ? error.detail : 'could not be opened' };
    }
  }

  /** The text of one of this device's own envelopes (to seal it again), or null. */
  async reopenOwn(conversationId, clientMsgId, envelope) {
    const payload = await this.reopenOwnPayload(conversationId, clientMsgId, envelope);
    return payload?.type === 'text' ? payload.text : null;
  }

  /** The payload (`text` or a checked `file`) of one of this device's own envelopes, or null. */
  async reopenOwnPayload(conversationId, clientMsgId, envelope) {
    const result = await this.open({
      conversation: conversationId,
      sender_id: this.me.id,
      client_msg_id: clientMsgId,
      envelope,
    });
    return result.status === 'ok' && !result.fileRefused ? result.payload : null;
  }
}

/** What a `file` payload shows: its checked `file` object and caption, or why it is refused. */
export function fileFields(payload) {
  const text = typeof payload.text === 'string' ? payload.text : '';
  try {
    validateFilePayload(payload);
    return { text, file: payload.file };
  } catch (error) {
    return { text: '', fileRefused: error instanceof FileRefused ? error.code : 'bad_meta' };
  }
}

function isValid(payload) {
  try {
    validatePayload(payload);
    return true;
  } catch (error) {
    if (error instanceof ProtocolError) return false;
    throw error;
  }
}
