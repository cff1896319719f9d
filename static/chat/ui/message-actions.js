/**
 * What a message's actions do in the open conversation: react (the picker), reply and
 * edit (through the composer), delete for everyone (after a confirmation), take a
 * reaction back, and jump from a quote to the message it quotes (loading older pages
 * when it is not shown yet). Also the keys of the message log: ↑/↓ move between
 * messages, and on a focused message R replies, + reacts, E edits and Delete deletes
 * (your own), Enter or the context-menu key opens its actions.
 * @module ui/message-actions
 */

import { confirmDialog } from './dialogs.js';
import { toast } from './dom.js';
import { quoteOf } from './message-view.js';
import { closeReactionPicker, openReactionPicker } from './reaction-picker.js';

const HIGHLIGHT = 'msg-highlight';
const OLDER_PAGES_TO_SEARCH = 10;

export class MessageActions {
  /**
   * @param {object} deps
   * @param {import('../chat.js').ChatApp} deps.app
   * @param {object} deps.conv the open conversation
   * @param {import('./composer.js').Composer} deps.composer
   * @param {() => HTMLElement} deps.log the message log element
   */
  constructor({ app, conv, composer, log }) {
    Object.assign(this, { app, conv, composer, log });
  }

  /** The name a quote or bar shows for a message's sender. */
  nameOf(item) {
    return item.own ? 'You' : item.sender;
  }

  /** The handlers of one shown message (ui/message-view.js `ctx.on`). */
  handlers(item, view, { target }) {
    return {
      react: (anchor) => this.react(item, view, anchor),
      reply: () => this.reply(item, view),
      edit: () => this.edit(item, view),
      remove: () => this.remove(item),
      toggle: (emoji) => this.toggle(item, view, emoji),
      jump: () => this.jump(view.reply_to, target),
    };
  }

  react(item, view, anchor) {
    const mine = new Set(Object.keys(view.reactions).filter((emoji) => this.app.rich.reacted(view, emoji)));
    const msg = anchor.closest('.msg');
    openReactionPicker({ anchor, mine, returnFocus: msg ?? anchor, onPick: (emoji) => this.toggle(item, view, emoji) });
  }

  toggle(item, view, emoji) {
    try {
      this.app.rich.toggleReaction(this.conv, item, view, emoji);
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  reply(item, view) {
    this.composer.reply(item, quoteOf({ item, view }, { nameOf: (i) => this.nameOf(i) }));
  }

  edit(item, view) {
    if (!this.app.rich.mayChange(item, view)) return;
    this.composer.edit(item, view.edited ?? item.text ?? '');
  }

  /** Send an edit made in the composer (nothing when the text did not change). */
  saveEdit(item, text) {
    const view = this.app.timeline.shown(this.conv).find((s) => s.item === item)?.view;
    if (!view || view.deleted) throw new Error('This message was deleted; the edit was not sent.');
    if (text === (view.edited ?? item.text)) return;
    this.app.rich.edit(this.conv, item, text);
  }

  async remove(item) {
    const sure = await confirmDialog({
      title: 'Delete for everyone?',
      message: 'The message is replaced by “Message deleted” on every device of everyone in this conversation, and the server forgets it. This cannot be undone.',
      confirm: 'Delete for everyone',
      danger: true,
    });
    if (!sure) return;
    if (this.composer.mode?.item === item) this.composer.stop();
    try {
      await this.app.rich.deleteForEveryone(this.conv, item);
    } catch (error) {
      toast(`Not deleted everywhere: ${error.detail ?? error.message}`, 'error');
    }
  }

  /**
   * Scroll to the message a quote names and highlight it; older pages are loaded while it
   * is not among the shown ones (at most ten).
   */
  async jump(ref, target) {
    if (!ref) return;
    const find = () => this.app.timeline.shown(this.conv).find(({ item }) => item.sender_id === ref.sender_id && item.client_msg_id === ref.client_msg_id);
    let found = target ?? find();
    for (let page = 0; !found && page < OLDER_PAGES_TO_SEARCH && this.conv.hasMore; page += 1) {
      if (!(await this.app.loadOlder(this.conv))) break;
      found = find();
    }
    if (!found) {
      toast('The quoted message is not in this conversation’s history.', 'error');
      return;
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const node = this.log()?.querySelector(`.msg[data-seq="${found.item.seq}"]`);
    if (!node) return;
    node.scrollIntoView({ block: 'center', behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth' });
    node.classList.remove(HIGHLIGHT);
    void node.offsetWidth; // restart the animation
    node.classList.add(HIGHLIGHT);
    node.addEventListener('animationend', () => node.classList.remove(HIGHLIGHT), { once: true });
    node.focus({ preventScroll: true });
  }

  /** Keys of the message log (see the module comment). */
  onKey(e, { itemOf }) {
    const log = this.log();
    const messages = [...log.querySelectorAll('.msg[data-seq]')];
    const msg = e.target.closest?.('.msg[data-seq]');
    if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      if (e.target !== log && e.target !== msg) return;
      e.preventDefault();
      const at = msg ? messages.indexOf(msg) : messages.length;
      const next = messages[Math.max(0, Math.min(messages.length - 1, at + (e.key === 'ArrowUp' ? -1 : 1)))];
      next?.focus();
      return;
    }
    if (!msg || e.target !== msg || e.ctrlKey || e.metaKey || e.altKey) return;
    const found = itemOf(Number(msg.dataset.seq));
    if (!found || found.item.status !== 'ok' || found.view.deleted) return;
    const { item, view } = found;
    const key = e.key;
    if (key === 'r' || key === 'R') this.reply(item, view);
    else if (key === '+' || key === '=') this.react(item, view, msg.querySelector('.act-react') ?? msg);
    else if ((key === 'e' || key === 'E') && this.app.rich.mayChange(item, view)) this.edit(item, view);
    else if ((key === 'Delete' || key === 'Backspace') && this.app.rich.mayChange(item, view)) this.remove(item);
    else if (key === 'Enter' || key === 'ContextMenu' || (key === 'F10' && e.shiftKey)) {
      msg.classList.add('menu-open');
      msg.querySelector('.msg-actions button')?.focus();
    } else if (key === 'Escape') {
      closeReactionPicker();
      log.focus();
    } else return;
    e.preventDefault();
  }
}
