/**
 * Frame routing: each server frame (PROTOCOL §5) to the part of the app that handles it.
 * Frames this app does not handle here are passed on as a `frame` event of the app, for
 * other modules (linking, history transfer) to listen to.
 * @module router
 */

/**
 * Handle one frame for `app` (a ChatApp). Resolves when it is handled.
 * @returns {Promise<void>|void}
 */
export function routeFrame(app, frame) {
  switch (frame.type) {
    case 'message':
      return app.onMessage(frame.message);
    case 'ack':
      return app.sender.onAck(frame);
    case 'synced':
      return app.onSynced(frame);
    case 'error':
      return frame.client_msg_id ? app.sender.onError(frame) : app.onError(frame);
    case 'presence':
      return app.onPresence(frame);
    case 'typing':
      return app.onTyping(frame);
    case 'read':
      return app.onRead(frame);
    case 'conversation':
      return app.onConversation(frame.conversation);
    case 'devices_changed':
      return app.onDevicesChanged(frame.user);
    default:
      app.dispatchEvent(new CustomEvent('frame', { detail: frame }));
      return undefined;
  }
}
