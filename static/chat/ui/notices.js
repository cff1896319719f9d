/**
 * The notices above a conversation's messages (ChatApp.noticesFor): each a callout with
 * a title, a plain explanation and its actions. Danger notices use role "alert".
 * @module ui/notices
 */

import { h } from './dom.js';
import { confirmDialog } from './dialogs.js';

/**
 * Nodes for `notices` ({kind, level, title?, text, actions: [{label, run?, href?, danger?,
 * confirm?: {title, message, confirm}}]}). `onDone` runs after an action.
 * @returns {HTMLElement[]}
 */
export function noticeNodes(notices, { onDone = () => {} } = {}) {
  return notices.map((notice) => {
    const danger = notice.level === 'danger';
    const roster = ['tampered', 'rollback', 'unsigned'].includes(notice.kind);
    const actions = (notice.actions ?? []).map((action) => {
      if (action.href) return h('a.small', { href: action.href }, action.label);
      return h(`button.small.${action.danger ? 'danger' : danger ? 'secondary' : 'primary'}`, {
        type: 'button',
        onclick: async () => {
          if (action.confirm && !(await confirmDialog({ ...action.confirm, danger: Boolean(action.danger) }))) return;
          await action.run?.();
          onDone();
        },
      }, action.label);
    });
    return h(`div.callout.notice-box.${danger ? 'callout-danger' : 'callout-warn'}${roster ? '' : '.trust-alert'}`, {
      role: danger ? 'alert' : 'status',
      dataset: { kind: notice.kind },
    },
    notice.title && h('strong', {}, notice.title),
    h('p', {}, notice.text),
    actions.length ? h('div.callout-actions', {}, actions) : null);
  });
}
