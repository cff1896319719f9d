/**
 * Message search in the sidebar, under the conversations the search box filters: results
 * as you type (debounced), newest first, each with its conversation, sender, date and a
 * snippet whose matching words are marked (DOM nodes only, never markup); a click or
 * Enter opens the conversation, loads older pages until the message is there, scrolls to
 * it and highlights it. The foot says how many messages this device has indexed and
 * offers "Rebuild index" with its progress. Keys: Ctrl/Cmd+K or "/" focus the search
 * box; ↓ goes from the box into the results, ↑/↓ move between them, Escape goes back.
 * @module ui/search-view
 */

import { h, replace, toast } from './dom.js';
import { icon } from './icons.js';

const DEBOUNCE = 120;
const LIMIT = 50;
const FOUND_FOR = 2500;

/** The date of a result: the time today, else the day (with the year when not this one). */
export function resultDate(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return date.toLocaleDateString([], { day: 'numeric', month: 'short', ...(date.getFullYear() === now.getFullYear() ? {} : { year: 'numeric' }) });
}

export class SearchView {
  /**
   * @param {object} deps
   * @param {import('../chat.js').ChatApp} deps.app
   * @param {HTMLInputElement} deps.input the sidebar's search box
   * @param {{messagesEl?: HTMLElement, timelineView?: object}} deps.chat the chat view (its open pane)
   * @param {(path: string) => void} deps.navigate
   */
  constructor({ app, input, chat, navigate }) {
    Object.assign(this, { app, input, chat, navigate });
    this.timer = null;
    this.frame = 0;
    this.status = h('p.sr-only', { role: 'status', 'aria-live': 'polite' });
    this.list = h('ul.msg-results', { 'aria-label': 'Messages found' });
    this.foot = h('div.search-foot');
    this.el = h('section.msg-search', { 'aria-label': 'Messages', hidden: true },
      h('div.section-label', {}, 'Messages'),
      this.list,
      this.foot,
      this.status);
    input.addEventListener('input', () => this.schedule());
    input.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown' && !this.el.hidden) {
        if (this.timer) this.render(); // what was typed, not the results of before
        const first = this.list.querySelector('.msg-result');
        if (first) {
          e.preventDefault();
          first.focus();
        }
      }
    });
    this.list.addEventListener('keydown', (e) => this.onKey(e));
    document.addEventListener('keydown', (e) => {
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
      const target = e.target;
      if (target?.closest?.('input, textarea, select, [contenteditable=""], [contenteditable="true"], dialog[open]')) return;
      e.preventDefault();
      input.focus();
      input.select();
    });
    app.search?.addEventListener('change', () => this.refresh());
  }

  get query() {
    return this.input.value.trim();
  }

  /** Search after the person paused typing. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.query) {
      this.render();
      return;
    }
    this.timer = setTimeout(() => this.render(), DEBOUNCE);
  }

  /** The index changed (grew, loaded, a rebuild moved on): search again, once per frame. */
  refresh() {
    if (this.el.hidden && !this.query) return;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render({ keepFocus: true });
    });
  }

  render({ keepFocus = false } = {}) {
    clearTimeout(this.timer);
    this.timer = null;
    const search = this.app.search;
    const q = this.query;
    this.el.hidden = !q || !search;
    this.el.closest('.sidebar')?.toggleAttribute('data-searching', !this.el.hidden);
    if (this.el.hidden) return;
    const focused = keepFocus && this.list.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    const { total, results } = search.search(q, { limit: LIMIT });
    const items = results.map(({ doc, parts }) => this.resultNode(doc, parts));
    if (!items.length) items.push(h('li.muted.empty-list', {}, search.ready ? 'No messages match.' : 'Opening the search index…'));
    else if (total > results.length) items.push(h('li.muted.more-results', {}, `${total - results.length} older ${total - results.length === 1 ? 'match' : 'matches'} not shown: add a word to narrow the search.`));
    replace(this.list, items);
    if (focused) this.list.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
    this.status.textContent = total ? `${total} ${total === 1 ? 'message' : 'messages'} found` : 'No messages match';
    this.renderFoot();
  }

  resultNode(doc, parts) {
    const conv = this.app.get(doc.conversation);
    const title = conv ? this.app.titleOf(conv) : 'A conversation';
    const sender = doc.senderId === this.app.me.id ? 'You' : doc.sender;
    const snippet = parts.map((p) => (p.hit ? h('mark', {}, p.text) : p.text));
    return h('li', {}, h('button.msg-result', {
      type: 'button',
      dataset: { key: `${doc.conversation}:${doc.id}`, conversation: doc.conversation, seq: doc.seq },
      onclick: () => this.open(doc),
    },
    h('span.result-head', {},
      h('span.result-conv', {}, title),
      h('time.result-date', { datetime: doc.created }, resultDate(doc.created))),
    h('span.result-text', {}, h('span.result-sender', {}, `${sender}: `), snippet)));
  }

  renderFoot() {
    const search = this.app.search;
    const state = search.rebuildState;
    const { messages } = search.stats();
    if (state?.running) {
      replace(this.foot,
        h('label.rebuild-progress', {}, `Indexing ${state.done.toLocaleString()} of about ${state.total.toLocaleString()} messages…`,
          h('progress', { max: Math.max(1, state.total), value: Math.min(state.done, state.total) })),
        h('button.link.small', { type: 'button', onclick: () => search.stopRebuild() }, 'Stop'));
      return;
    }
    const unreadable = state?.unreadable ? `${state.unreadable} ${state.unreadable === 1 ? 'message' : 'messages'} could not be opened. ` : '';
    const note = state?.failed ? `${state.failed} ` : state && !state.stopped ? `Index rebuilt. ${unreadable}` : '';
    replace(this.foot,
      h('p.muted.small', {}, icon('lock', 'icon-inline'), ` ${note}${messages.toLocaleString()} ${messages === 1 ? 'message' : 'messages'} indexed on this device, encrypted; searches never leave it. Conversations are indexed as you open them.`),
      h('button.link.small', { type: 'button', onclick: () => search.rebuild() }, 'Rebuild index'));
  }

  onKey(e) {
    const buttons = [...this.list.querySelectorAll('.msg-result')];
    const at = buttons.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' && at >= 0) {
      e.preventDefault();
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (e.key === 'ArrowUp' && at >= 0) {
      e.preventDefault();
      if (at === 0) this.input.focus();
      else buttons[at - 1].focus();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.input.focus();
    }
  }

  /** Open the result's conversation, load back to the message, scroll to it and mark it. */
  async open(doc) {
    this.navigate(`/?c=${doc.conversation}`);
    let shown = false;
    try {
      shown = await this.app.search.loadUntil(doc.conversation, doc.seq);
    } catch {
      toast('Could not load the conversation’s older messages.', 'error');
      return;
    }
    if (this.app.openId !== doc.conversation) return; // the person went elsewhere meanwhile
    if (!shown) {
      toast('This message is no longer in the conversation.', 'error');
      return;
    }
    this.chat.timelineView?.render();
    const node = this.chat.messagesEl?.querySelector(`.msg[data-seq="${doc.seq}"]`);
    if (!node) return;
    node.scrollIntoView({ block: 'center' });
    node.classList.add('msg-found');
    node.setAttribute('tabindex', '-1');
    node.focus({ preventScroll: true });
    setTimeout(() => node.classList.remove('msg-found'), FOUND_FOR);
  }
}
