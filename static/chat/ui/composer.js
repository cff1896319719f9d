/**
 * The message box of a conversation: it grows with what is typed (long lines too) up to
 * ten rows, writes in the text's own direction (`dir="auto"`), and keeps to the 16,000
 * character cap (code points, PROTOCOL §2) in the open: a counter from 15,000 on, a send
 * over the cap refused with the reason, a paste that would pass it refused with a message
 * (never cut silently). It replies to a message (a bar quoting it) or edits one of your
 * own (the bar says so; Escape or × stops). The form and buttons are the caller's.
 * @module ui/composer
 */

import { MAX_TEXT_CHARS } from '../protocol.js';
import { h, replace } from './dom.js';
import { icon } from './icons.js';

/** The counter shows from this many characters on. */
export const WARN_AT = 15000;
export const MAX_ROWS = 10;

const count = (text) => {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
};
const format = (n) => n.toLocaleString('en');

export class Composer {
  /** @param {{onEscape?: () => void}} [options] */
  constructor() {
    this.textarea = h('textarea', { id: 'composer-input', rows: 1, placeholder: 'Message', 'aria-label': 'Message', dir: 'auto', 'aria-describedby': 'composer-limit' });
    this.contextEl = h('div.composer-context', { hidden: true });
    this.limitEl = h('p.composer-limit', { id: 'composer-limit', role: 'status', 'aria-live': 'polite', hidden: true });
    this.mode = null; // {kind: 'reply'|'edit', item, draft?}
    this.refused = null;
    this.textarea.addEventListener('input', () => {
      this.refused = null;
      this.update();
    });
    this.textarea.addEventListener('paste', (e) => this.onPaste(e));
    this.textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.mode) {
        e.preventDefault();
        this.stop();
      }
    });
  }

  /** The text, its length in code points, and whether it is over the cap. */
  get length() {
    return count(this.textarea.value);
  }

  get over() {
    return this.length > MAX_TEXT_CHARS;
  }

  /** A paste that would make the text longer than the cap: refused, with a message. */
  onPaste(e) {
    const pasted = e.clipboardData?.getData('text/plain') ?? '';
    if (!pasted) return;
    const t = this.textarea;
    const selected = count(t.value.slice(t.selectionStart, t.selectionEnd));
    const after = this.length - selected + count(pasted);
    if (after <= MAX_TEXT_CHARS) return;
    e.preventDefault();
    this.refused = `Not pasted: the message would be ${format(after)} characters, over the limit of ${format(MAX_TEXT_CHARS)}. Paste a shorter text, or send it in parts.`;
    this.update();
  }

  /** Grow or shrink to the text (rows, so no inline style), and show the counter when near the cap. */
  update() {
    const t = this.textarea;
    t.rows = 1;
    // an empty box is one row: no layout read (a burst of sends would force one per Enter)
    if (t.value) while (t.rows < MAX_ROWS && t.scrollHeight > t.clientHeight + 1) t.rows += 1;
    const n = this.length;
    const el = this.limitEl;
    el.classList.toggle('over', n > MAX_TEXT_CHARS || Boolean(this.refused));
    let text = '';
    if (this.refused) {
      text = this.refused;
    } else if (n > MAX_TEXT_CHARS) {
      text = `${format(n)} / ${format(MAX_TEXT_CHARS)} characters: ${format(n - MAX_TEXT_CHARS)} over the limit. Shorten it to send.`;
    } else if (n >= WARN_AT) {
      text = `${format(n)} / ${format(MAX_TEXT_CHARS)} characters`;
    }
    if (el.textContent !== text) el.textContent = text;
    el.hidden = !text;
    t.setAttribute('aria-invalid', String(n > MAX_TEXT_CHARS));
  }

  /** Say why a send was refused (over the cap), in the limit line. */
  refuse(message) {
    this.refused = message;
    this.update();
  }

  /** Quote `item` in the next message (`quote` is {name, text} to show). */
  reply(item, quote) {
    this.stop({ keepText: true });
    this.mode = { kind: 'reply', item };
    this.showContext(`Replying to ${quote.name}`, quote.text, 'Cancel reply');
    this.textarea.focus();
  }

  /** Edit one of your own messages: its text goes in the box (what was typed comes back after). */
  edit(item, text) {
    const draft = this.mode?.kind === 'edit' ? this.mode.draft : this.textarea.value;
    this.stop({ keepText: true });
    this.mode = { kind: 'edit', item, draft };
    this.textarea.value = text;
    this.showContext('Editing your message', text, 'Cancel edit');
    this.update();
    this.textarea.focus();
    this.textarea.setSelectionRange(this.textarea.value.length, this.textarea.value.length);
  }

  showContext(title, text, cancel) {
    replace(this.contextEl,
      icon(this.mode.kind === 'edit' ? 'edit' : 'reply', 'icon-inline'),
      h('div.context-body', {}, h('span.context-title', {}, title), h('span.context-text', { dir: 'auto' }, text)),
      h('button.icon-button.small', { type: 'button', 'aria-label': cancel, title: `${cancel} (Esc)`, onclick: () => this.stop() }, icon('close', 'icon-inline')));
    this.contextEl.dataset.kind = this.mode.kind;
    this.contextEl.hidden = false;
  }

  /** Leave reply or edit mode (an edit gives back what was typed before it). */
  stop({ keepText = false } = {}) {
    const mode = this.mode;
    this.mode = null;
    this.contextEl.hidden = true;
    replace(this.contextEl);
    if (mode?.kind === 'edit' && !keepText) {
      this.textarea.value = mode.draft ?? '';
      this.update();
    }
  }

  /** Empty the box after a send (an edit's draft comes back). */
  sent() {
    const mode = this.mode;
    this.mode = null;
    this.contextEl.hidden = true;
    replace(this.contextEl);
    this.textarea.value = mode?.kind === 'edit' ? mode.draft ?? '' : '';
    this.refused = null;
    this.update();
  }
}
