/**
 * The reaction picker: six common emoji and "any emoji" (a field taking one emoji, checked
 * by payloads.js isReactionEmoji), in a small popup by the message. Arrow keys move
 * between the emoji, Escape or a click elsewhere closes it and focus goes back where it
 * was; one already yours is marked (picking it takes it back).
 * @module ui/reaction-picker
 */

import { isReactionEmoji } from '../payloads.js';
import { h } from './dom.js';

export const COMMON_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

let current = null;

/** Close the open picker, if any. */
export function closeReactionPicker() {
  current?.close();
}

/**
 * Open the picker by `anchor` (an element); `onPick(emoji)` is called with the chosen
 * emoji, after which it closes. `mine` is the set of emoji this user reacted with.
 * @returns {HTMLElement} the picker
 */
export function openReactionPicker({ anchor, mine = new Set(), onPick, returnFocus = anchor }) {
  closeReactionPicker();
  const error = h('p.picker-error', { role: 'alert', id: 'picker-error' });
  const field = h('input.picker-field', { type: 'text', id: 'picker-any', autocomplete: 'off', dir: 'auto', placeholder: 'Any emoji', 'aria-label': 'Any emoji', 'aria-describedby': 'picker-error', enterkeyhint: 'done' });
  const choose = (emoji) => {
    close();
    onPick(emoji);
  };
  const buttons = COMMON_EMOJI.map((emoji) => h(`button.picker-emoji${mine.has(emoji) ? '.mine' : ''}`, {
    type: 'button',
    'aria-label': mine.has(emoji) ? `Take back ${emoji}` : `React with ${emoji}`,
    'aria-pressed': String(mine.has(emoji)),
    onclick: () => choose(emoji),
  }, emoji));
  const form = h('form.picker-any', {}, field, h('button.secondary.small', { type: 'submit' }, 'Add'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const emoji = field.value.trim();
    if (!isReactionEmoji(emoji)) {
      error.textContent = emoji ? 'That is not one emoji. Enter a single emoji.' : 'Enter an emoji.';
      field.setAttribute('aria-invalid', 'true');
      field.focus();
      return;
    }
    choose(emoji);
  });
  const picker = h('div.reaction-picker', { role: 'dialog', 'aria-label': 'React to the message' },
    h('div.picker-row', { role: 'group', 'aria-label': 'Common reactions' }, buttons), form, error);
  picker.addEventListener('keydown', (e) => {
    const at = buttons.indexOf(document.activeElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
      returnFocus?.focus?.();
    } else if (at >= 0 && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      e.preventDefault();
      buttons[(at + (e.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length].focus();
    }
  });
  const outside = (e) => {
    if (!picker.contains(e.target) && !anchor.contains(e.target)) close();
  };
  const close = () => {
    document.removeEventListener('pointerdown', outside, true);
    window.removeEventListener('resize', close);
    picker.remove();
    if (current?.picker === picker) current = null;
  };
  document.addEventListener('pointerdown', outside, true);
  window.addEventListener('resize', close);
  document.body.append(picker);
  place(picker, anchor);
  current = { picker, close };
  buttons[0].focus();
  return picker;
}

/** Put the picker above the anchor (below when there is no room), inside the window. */
function place(picker, anchor) {
  const rect = anchor.getBoundingClientRect();
  const width = picker.offsetWidth;
  const height = picker.offsetHeight;
  const left = Math.max(8, Math.min(rect.left + rect.width / 2 - width / 2, window.innerWidth - width - 8));
  const top = rect.top - height - 6 >= 8 ? rect.top - height - 6 : Math.min(rect.bottom + 6, window.innerHeight - height - 8);
  picker.style.left = `${Math.round(left)}px`;
  picker.style.top = `${Math.round(Math.max(8, top))}px`;
}
