/**
 * A new-passphrase field pair with a strength meter, a hint and the lost-passphrase
 * warning. `check()` returns an error message or null.
 * @module ui/passphrase-field
 */

import { MIN_LENGTH, MIN_SCORE, strength } from '../passphrase.js';
import { h } from './dom.js';

let counter = 0;

export function passphraseField({ label = 'Passphrase', warn = true } = {}) {
  const id = `pp-${++counter}`;
  const input = h('input', { id, type: 'password', autocomplete: 'new-password', required: true, minlength: MIN_LENGTH, 'aria-describedby': `${id}-hint` });
  const again = h('input', { id: `${id}-again`, type: 'password', autocomplete: 'new-password', required: true });
  const meter = h('meter', { min: 0, max: 4, low: 2, high: 3, optimum: 4, value: 0, 'aria-label': 'Passphrase strength' });
  const verdict = h('span.strength-label', {}, '');
  const hint = h('p.hint', { id: `${id}-hint` }, `At least ${MIN_LENGTH} characters. Several unrelated words are easy to remember and hard to guess.`);
  const show = h('input', { type: 'checkbox', id: `${id}-show` });
  show.addEventListener('change', () => {
    input.type = again.type = show.checked ? 'text' : 'password';
  });
  input.addEventListener('input', () => {
    const { score, label: name, hint: advice } = strength(input.value);
    meter.value = input.value ? score + 0.5 : 0;
    verdict.textContent = input.value ? name : '';
    verdict.dataset.score = String(score);
    hint.textContent = input.value ? advice : hint.textContent;
  });
  const el = h('div.field-group', {},
    h('label', { for: id }, label),
    input,
    h('div.strength', {}, meter, verdict),
    hint,
    h('label', { for: `${id}-again` }, `${label} (again)`),
    again,
    h('label.check', { for: `${id}-show` }, show, ' Show passphrase'),
    warn && h('div.callout.callout-warn', { role: 'note' },
      h('strong', {}, 'Keep this passphrase safe. '),
      'It is not your login password and never leaves this browser. If you lose it, nobody — not even the server — can unlock your keys, and your message history on this device becomes unreadable.'),
  );
  return {
    el,
    input,
    get value() {
      return input.value;
    },
    check() {
      if (Array.from(input.value).length < MIN_LENGTH) return `The passphrase needs at least ${MIN_LENGTH} characters.`;
      if (strength(input.value).score < MIN_SCORE) return 'The passphrase is too easy to guess; make it longer.';
      if (input.value !== again.value) return 'The two passphrases differ.';
      return null;
    },
    clear() {
      input.value = again.value = '';
      meter.value = 0;
      verdict.textContent = '';
    },
  };
}
