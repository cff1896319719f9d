/**
 * Message crypto for the chat, on top of protocol.js: seal a text for a conversation's
 * current devices (checked and trust-tracked), and open a stored message against its
 * sender's device key. Failures are results, never text.
 * @module messages
 */

import { OpenError, openEnvelope, sealEnvelope, textMessage } from './protocol.js';

/**
 * Sending to this conversation is paused: a member's identity changed and is not
 * accepted yet, or a listed device is not certified by its owner's identity
 * (directory.recipientsOf's `problems`; the conversation shows them as notices).
 */
export class BlockedError extends Error {
  constructor(problems) {
    const first = problems[0];
    super(first.kind === 'identity_changed'
      ? `${first.username}’s safety number changed. Review the notice before sending.`
      : first.kind === 'own_uncertified_device'
        ? 'A device on your account is not certified by your identity. Review the alert before sending.'
        : `A device of ${first.username} is not certified by their identity; the message was not sent.`);
    this.name = 'BlockedError';
    this.problems = problems;
    this.username = first.username;
  }
}

/** Kept for callers of the v1 API: a device that failed its checks is a BlockedError now. */
export class UntrustedDeviceError extends BlockedError {}

export class Messenger {
  /** @param {{me: {id:number, username:string}, keys: import('./protocol.js').DeviceKeys, directory: any, trust: any}} deps */
  constructor({ me, keys, directory, trust }) {
    Object.assign(this, { me, keys, directory, trust });
  }

  /**
   * The encryption keys of every device the directory allows (certified by an accepted
   * identity; §7.4) for every current member and me. Any problem pauses sending
   * (BlockedError). `force` refetches the lists (after stale_devices).
   */
  async recipients(conversation, { force = false } = {}) {
    const names = conversation.members.map((m) => m.username);
    if (!names.includes(this.me.username)) names.push(this.me.username);
    const { keys, problems } = await this.directory.recipientsOf(names, { force });
    if (problems.length) throw new BlockedError(problems);
    return { keys, changes: [] };
  }

  /** A §2 envelope of a text message. Resolves {envelope, changes}. */
  async seal(conversation, clientMsgId, text, { force = false } = {}) {
    const plaintext = textMessage(text);
    const { keys, changes } = await this.recipients(conversation, { force });
    const envelope = await sealEnvelope({
      plaintext,
      conversationId: conversation.id,
      senderId: this.me.id,
      clientMsgId,
      senderKeys: this.keys,
      recipientKeys: keys,
    });
    return { envelope, changes };
  }

  /**
   * Open a stored message: {status: 'ok', text, note} (`note`: null, 'earlier_identity'
   * or 'not_upgraded', from directory.senderKey) or {status: 'failed' | 'not_for_device' |
   * 'unsupported', reason}. Never throws.
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
      const sender = message.sender_id === this.me.id && envelope.sig_kid === this.keys.sigKid
        ? { key: this.keys.sigPublic, note: null }
        : await this.directory.senderKey(message);
      if (!sender) return { status: 'failed', reason: 'the sender device is not certified by an accepted identity, or was not active' };
      const sigPublic = sender.key;
      const plain = await openEnvelope(envelope, {
        conversationId: message.conversation,
        senderId: message.sender_id,
        clientMsgId: message.client_msg_id,
        deviceKeys: this.keys,
        sigPublic,
      });
      if (plain.type === 'text' && typeof plain.text === 'string') return { status: 'ok', text: plain.text, note: sender.note };
      return { status: 'unsupported', reason: `message type ${String(plain.type).slice(0, 40)}` };
    } catch (error) {
      return { status: 'failed', reason: error instanceof OpenError ? error.detail : 'could not be opened' };
    }
  }

  /** The text of one of this device's own envelopes (to re-encrypt it after stale_devices). */
  async reopenOwn(conversationId, clientMsgId, envelope) {
    const result = await this.open({
      conversation: conversationId,
      sender_id: this.me.id,
      client_msg_id: clientMsgId,
      envelope,
    });
    return result.status === 'ok' ? result.text : null;
  }
}
