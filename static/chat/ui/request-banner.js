/**
 * The banner above a conversation that is a message request (or whose other person this
 * user blocked): who wants to message her, what they cannot see until she accepts, and
 * Accept / Delete / Block (or Unblock). Replying in the composer accepts too (the server
 * does it; its `conversation` frame takes the banner away).
 * @module ui/request-banner
 */

import { acceptRequest, declineRequest, setBlocked } from '../requests.js';
import { confirmDialog } from './dialogs.js';
import { h, replace, toast } from './dom.js';

/** What the banner shows for `conv`: 'request', 'blocked' or null. */
export function bannerKind(conv) {
  if (conv?.kind !== 'direct' || conv.left) return null;
  if (conv.blocked) return 'blocked';
  return conv.request ? 'request' : null;
}

/** Why the composer is off: this user blocked the other person (null: not blocked). */
export function blockedReason(app, conv) {
  return bannerKind(conv) === 'blocked' ? `You blocked ${app.peerOf(conv) ?? 'them'}: unblock to write` : null;
}

/** The list's line under a request's title (null: not a request). */
export function requestSubline(conv) {
  const kind = bannerKind(conv);
  return kind === 'blocked' ? 'Blocked' : kind === 'request' ? 'Message request' : null;
}

/**
 * Render the banner of `conv` into `container` (emptied when there is none); unchanged
 * state leaves the DOM (and the focus) as it is.
 */
export function renderRequestBanner(container, { app, conv, navigate }) {
  const kind = bannerKind(conv);
  const peer = app.peerOf(conv) ?? 'Someone';
  const signature = JSON.stringify([conv?.id, kind, peer]);
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  if (!kind) {
    replace(container);
    return;
  }
  const run = (action) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      toast(error?.detail ?? error?.message ?? 'That did not work.', 'error');
      button.disabled = false;
    }
  };
  const decline = run(async () => {
    await declineRequest(app, conv);
    navigate('/');
  });
  const buttons = kind === 'request'
    ? [
        h('button.primary.small', { type: 'button', onclick: run(() => acceptRequest(app, conv)) }, 'Accept'),
        h('button.secondary.small', { type: 'button', onclick: decline }, 'Delete'),
        h('button.danger.small', { type: 'button', onclick: run(async () => {
          const ok = await confirmDialog({
            title: `Block ${peer}?`,
            message: `${peer} will not be able to message you, add you to groups or see when you are online. They are not told.`,
            confirm: 'Block',
            danger: true,
          });
          if (ok) await setBlocked(app, conv, true);
        }) }, 'Block'),
      ]
    : [
        h('button.secondary.small', { type: 'button', onclick: run(() => setBlocked(app, conv, false)) }, 'Unblock'),
        conv.request ? h('button.secondary.small', { type: 'button', onclick: decline }, 'Delete') : null,
      ];
  const text = kind === 'request'
    ? `${peer} wants to message you. They won’t see that you’re online or have read their messages until you accept.`
    : `You blocked ${peer}. They cannot message you or see when you are online.`;
  replace(container, h('div.callout.request-banner', { role: 'region', 'aria-label': kind === 'request' ? 'Message request' : 'Blocked', dataset: { kind } },
    h('p', {}, text),
    h('div.callout-actions', {}, buttons)));
}
