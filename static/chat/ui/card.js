/**
 * The centred card of the screens before the chat, and the error box of their forms.
 * @module ui/card
 */

import { h, replace } from './dom.js';

/** A setup card with its title as the heading the focus goes to. */
export function card(title, ...children) {
  return h('main.setup-card', { 'aria-labelledby': 'setup-title' }, h('h1', { id: 'setup-title', tabindex: -1 }, title), ...children);
}

/** Show a card and put the focus on `focus` or its heading (screen changes are announced). */
export function show(root, el, focus = null) {
  replace(root, el);
  (focus ?? el.querySelector('h1'))?.focus();
}

/** A form's error line (role=alert): `show(message)`, `clear()`. */
export function errorBox() {
  const box = h('div.form-error', { role: 'alert', hidden: true });
  return {
    el: box,
    show(message) {
      box.textContent = message;
      box.hidden = false;
    },
    clear() {
      box.hidden = true;
      box.textContent = '';
    },
  };
}
