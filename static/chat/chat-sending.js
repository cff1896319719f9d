/**
 * Sending, for ChatApp: texts and files (sender.js, uploads.js), retrying or discarding
 * a failed send, and typing (sent at most every 3 s, shown for 6 s).
 *
 * Methods of ChatApp (chat.js mixes them into its prototype): `this` is the app.
 * @module chat-sending
 */

export const TYPING_SHOWN = 6000;
const TYPING_EVERY = 3000;

export class ChatSending {
  /** Encrypt and queue a text; it shows as pending at once. */
  async sendText(conv, text) {
    conv.last_activity = new Date().toISOString();
    this.emitSoon('list', null);
    this.sender.sendText(conv, text);
  }

  /** Encrypt, upload and send a file (uploads.js); throws a plain Error for one over 100 MiB. */
  sendFile(conv, file, options = {}) {
    conv.last_activity = new Date().toISOString();
    this.emitSoon('list', null);
    return this.uploads.start(conv, file, options);
  }

  retryFailed(conv, clientMsgId) {
    return this.sender.retry(clientMsgId);
  }

  discardPending(conv, clientMsgId) {
    this.sender.discard(clientMsgId);
  }

  typing(conv) {
    if (Date.now() - this.lastTypingSent < TYPING_EVERY || conv.left) return;
    this.lastTypingSent = Date.now();
    this.socket?.send({ type: 'typing', conversation: conv.id });
  }

  /** Users typing in a conversation now (not me). */
  typingIn(conv) {
    const now = Date.now();
    return [...conv.typing.entries()].filter(([, at]) => now - at < TYPING_SHOWN).map(([user]) => user);
  }
}
