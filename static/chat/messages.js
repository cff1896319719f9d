/**
 * Message crypto for the chat, on top of protocol.js: seal a text for a conversation's
 * current devices (checked and trust-tracked), and open a stored message against its
 * sender's device key. Failures are results, never text.
 * @module messages
 */

import { OpenError, openEnvelope, sealEnvelope, textMessage } from './protocol.js';

/** A member's device key was replaced and the user has not accepted it yet. */
export class BlockedError extends Error {
  constructor(username) {
    super(`The keys of a device of ${username} changed. Review the warning before sending.`);
    this.name = 'BlockedError';
    this.username = username;
  }
}

/** A member's device failed its key checks (kid or proof), so it cannot be encrypted to. */
export class UntrustedDeviceError extends Error {
  constructor(username) {
    super(`A device of ${username} failed its key checks; the message was not sent.`);
    this.name = 'UntrustedDeviceError';
  }
}

export class Messenger {
  /** @param {{me: {id:number, username:string}, keys: import('./protocol.js').DeviceKeys, directory: any, trust: any}} deps */
  constructor({ me, keys, directory, trust }) {
    Object.assign(this, { me, keys, directory, trust });
  }

  /**
   * The encryption keys of every active device of every current member, after noting
   * device-set changes with trust. `force` refetches the lists (after stale_devices).
   */
  async recipients(conversation, { force = false } = {}) {
    const names = conversation.members.map((m) => m.username);
    if (!names.includes(this.me.username)) names.push(this.me.username);
    const lists = await Promise.all(names.map((name) => this.directory.active(name, { force })));
    const changes = [];
    for (const { user, devices, rejected } of lists) {
      changes.push(...(await this.trust.observe(user, devices)));
      if (this.trust.blocked(user.username)) throw new BlockedError(user.username);
      if (rejected.length) throw new UntrustedDeviceError(user.username);
    }
    const keys = {};
    for (const { devices } of lists) {
      for (const device of devices) keys[device.enc_kid] = await this.directory.encryptionKey(device);
    }
    return { keys, changes };
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
   * Open a stored message: {status: 'ok', text} or {status: 'failed' | 'not_for_device' |
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
      const sigPublic = message.sender_id === this.me.id && envelope.sig_kid === this.keys.sigKid
        ? this.keys.sigPublic
        : await this.directory.senderKey(message);
      if (!sigPublic) return { status: 'failed', reason: 'unknown or inactive sender device' };
      const distrust = await this.senderDistrust(message);
      if (distrust) return { status: 'failed', reason: distrust };
      const plain = await openEnvelope(envelope, {
        conversationId: message.conversation,
        senderId: message.sender_id,
        clientMsgId: message.client_msg_id,
        deviceKeys: this.keys,
        sigPublic,
      });
      if (plain.type === 'text' && typeof plain.text === 'string') return { status: 'ok', text: plain.text };
      return { status: 'unsupported', reason: `message type ${String(plain.type).slice(0, 40)}` };
    } catch (error) {
      return { status: 'failed', reason: error instanceof OpenError ? error.detail : 'could not be opened' };
    }
  }

  /**
   * Trust on first use for incoming messages too: a sender device this browser has seen
   * with other keys is refused until the user accepts the change (a `replaced` alert); one
   * it has not seen is first noted as an `added` alert. Null when the sender is fine.
   */
  async senderDistrust(message) {
    const known = this.trust.known(message.sender);
    const seen = known?.devices?.[message.sender_device];
    if (!known || (seen && seen.sig_kid === message.envelope.sig_kid)) return null;
    const { user, devices } = await this.directory.active(message.sender);
    await this.trust.observe(user, devices);
    const replaced = this.trust.pending([message.sender])
      .some((a) => a.kind === 'replaced' && a.device.id === message.sender_device);
    return replaced ? `the keys of ${message.sender}’s device changed; review the warning first` : null;
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
