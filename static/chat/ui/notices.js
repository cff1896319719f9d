/**
 * The identity notices of a conversation (trust.noticesFor): blocking ones (an identity
 * change, a device not certified by its owner's identity, an uncertified device of my
 * own) as a red callout with their actions, and "not upgraded" as one quiet line.
 * Text goes in as text only.
 * @module ui/notices
 */

import { h, replace, toast } from './dom.js';
import { confirmDialog } from './dialogs.js';
import { icon } from './icons.js';

const TITLES = {
  identity_changed: 'Safety number changed. Sending is paused.',
  uncertified_device: 'Unknown device. Sending is paused.',
  own_uncertified_device: 'A device on your account was not added by you. Sending is paused.',
};

/** An action of a notice as a button (`run`) or a link (`href`). */
export function actionControl(action, { navigate } = {}) {
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
      if (action.confirm && !(await confirmDialog({ title: action.label, message: action.confirm, confirm: action.label, danger: Boolean(action.danger) }))) return;
      button.disabled = true;
      try {
        await action.run();
      } catch (error) {
        toast(error?.detail ?? error?.message ?? 'That did not work.', 'error');
      } finally {
        button.disabled = false;
      }
    },
  }, action.label);
  return button;
}

/** Whether any notice pauses sending. */
export function isBlocked(notices) {
  return notices.some((n) => n.blocking);
}

/**
 * Render `notices` into `container` (emptied when there are none); the same notices
 * again leave the DOM (and the focus) as it is.
 */
export function renderNotices(container, notices, { navigate } = {}) {
  const signature = JSON.stringify(notices.map((n) => [n.kind, n.username, n.text, n.actions.map((a) => a.label)]));
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  const blocking = notices.filter((n) => n.blocking);
  const quiet = notices.filter((n) => !n.blocking);
  replace(container,
    blocking.map((notice) => h('div.callout.callout-danger.trust-alert.identity-notice', { role: 'alert', dataset: { kind: notice.kind, username: notice.username } },
      h('strong', {}, icon('alert', 'icon-inline'), ' ', TITLES[notice.kind] ?? 'Sending is paused.'),
      h('p', {}, notice.text),
      notice.actions.length ? h('div.callout-actions', {}, notice.actions.map((a) => actionControl(a, { navigate }))) : null)),
    quiet.length ? h('p.not-upgraded-note', { dataset: { kind: 'not_upgraded' } }, quiet.map((n) => n.text).join(' ')) : null);
}
