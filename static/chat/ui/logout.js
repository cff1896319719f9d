/**
 * The Log out control (POST /logout/ with the page's CSRF token): an icon button in the
 * chat's toolbar, a text button on the screens before the chat (unlock, setup, link).
 * @module ui/logout
 */

import { h } from './dom.js';
import { icon } from './icons.js';

/** A form that logs out; `compact` draws it as the toolbar's icon button. */
export function logoutForm({ compact = false } = {}) {
  const token = document.querySelector('[name=csrfmiddlewaretoken]')?.value ?? '';
  const button = compact
    ? h('button.icon-button', { type: 'submit', 'aria-label': 'Log out', title: 'Log out' }, icon('logout'))
    : h('button.link', { type: 'submit' }, 'Log out');
  return h('form.logout', { method: 'post', action: '/logout/' }, h('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: token }), button);
}

/** "Signed in as alice · Log out", for the foot of a card before the chat. */
export function signedInLine(me) {
  return h('p.signed-in', {}, 'Signed in as ', h('strong', {}, me.username), ' · ', logoutForm());
}
