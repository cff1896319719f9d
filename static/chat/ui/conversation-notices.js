/**
 * The notices above a conversation's messages (ChatApp.noticesFor): the roster's
 * (tampered, rollback, an unsigned member list) and the identity lane's
 * (trust.noticesFor: identity changed, uncertified devices, not upgraded), each a
 * callout with a title, a plain explanation and its actions. Danger notices have role
 * "alert". The same notices again leave the DOM (and the focus) as it is.
 * @module ui/conversation-notices
 */

import { h, replace, toast } from './dom.js';
import { confirmDialog } from './dialogs.js';
import { icon } from './icons.js';

/** Titles of notices that bring none (the identity lane's kinds). */
const TITLES = {
  identity_changed: 'Safety number changed. Sending is paused.',
  uncertified_device: 'Unknown device. Sending is paused.',
  own_uncertified_device: 'A device on your account was not added by you. Sending is paused.',
};

/** An action as a button (`run`, with an optional `confirm`: text or {title, message, confirm}) or a link (`href`). */
function actionControl(action, { navigate, onDone }) {
  if (action.href) {
    return h('a.button.secondary.small', {
      href: action.href,
      onclick: navigate ? (e) => {
        e.preventDefault();
        navigate(action.href);
      } : undefined,
    }, action.label);
  }
  const button = h(`button.${action.danger ? 'danger' : 'primary'}.small`, {
    type: 'button',
    onclick: async () => {
      if (action.confirm) {
        const ask = typeof action.confirm === 'string' ? { title: action.label, message: action.confirm, confirm: action.label } : action.confirm;
        if (!(await confirmDialog({ ...ask, danger: Boolean(action.danger) }))) return;
      }
      button.disabled = true;
      try {
        await action.run?.();
      } catch (error) {
        toast(error?.detail ?? error?.message ?? 'That did not work.', 'error');
      } finally {
        button.disabled = false;
        onDone();
      }
    },
  }, action.label);
  return button;
}

/**
 * Render `notices` ({kind, level?, blocking?, title?, text, username?, actions}) into
 * `container`. Notices without a level are danger when blocking, else a quiet line.
 */
export function renderNotices(container, notices, { navigate = null, onDone = () => {} } = {}) {
  const signature = JSON.stringify(notices.map((n) => [n.kind, n.username, n.title, n.text, (n.actions ?? []).map((a) => a.label)]));
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  const callouts = notices.filter((n) => n.level || n.blocking);
  const quiet = notices.filter((n) => !n.level && !n.blocking);
  replace(container,
    callouts.map((notice) => {
      const danger = (notice.level ?? 'danger') === 'danger';
      const identity = !['tampered', 'rollback', 'unsigned'].includes(notice.kind);
      const title = notice.title ?? TITLES[notice.kind] ?? (notice.blocking ? 'Sending is paused.' : null);
      return h(`div.callout.notice-box.${danger ? 'callout-danger' : 'callout-warn'}${identity ? '.trust-alert.identity-notice' : ''}`, {
        role: danger ? 'alert' : 'status',
        dataset: { kind: notice.kind, username: notice.username },
      },
      title && h('strong', {}, danger ? icon('alert', 'icon-inline') : null, danger ? ' ' : null, title),
      h('p', {}, notice.text),
      notice.actions?.length ? h('div.callout-actions', {}, notice.actions.map((a) => actionControl(a, { navigate, onDone }))) : null);
    }),
    quiet.length ? h('p.not-upgraded-note', { dataset: { kind: quiet[0].kind } }, quiet.map((n) => n.text).join(' ')) : null);
}
