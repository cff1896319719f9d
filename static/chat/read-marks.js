/**
 * This user's read marks (PROTOCOL §5 `read`): the open conversation, while the page is
 * seen, is marked read up to its cursor, the last seq before which everything is filed.
 * The cursor can pass someone else's message after it arrived (an own message below it
 * was still being filed, or a `synced` frame moved it), so the mark is checked again
 * whenever the cursor moves (issue 14, bug 1).
 * @module read-marks
 */

/** Send `read` for the open conversation up to its cursor if that is further than before. */
export function markRead(app) {
  const conv = app.get(app.openId);
  if (!conv || !app.visible) return;
  const upTo = conv.cursor;
  if (upTo > conv.read_up_to || conv.unread) {
    if (upTo > conv.read_up_to && app.socket?.send({ type: 'read', conversation: conv.id, up_to: upTo })) conv.read_up_to = upTo;
    if (upTo >= conv.last_seq) conv.unread = 0;
    app.emit('list');
  }
}

/** Mark `conv` read if it is open and seen and its cursor passed someone else's message not marked yet. */
export function readIfSeen(app, conv) {
  if (conv.id !== app.openId || !app.visible) return;
  for (let seq = conv.cursor; seq > conv.read_up_to; seq -= 1) {
    if (conv.messages.get(seq)?.own === false) {
      markRead(app);
      return;
    }
  }
}
