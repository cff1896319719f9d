/**
 * The message log of the open conversation: messages by seq with day separators, the
 * verified roster events among them ("alice added bob"), flagged messages (replayed,
 * out of order, failed) as notes that never show their text, and this device's pending
 * messages at the end. Each message is drawn by ui/message-view.js with what
 * timeline.js folded into it (quote, edit, deletion, reactions); consecutive messages of
 * one sender within five minutes are grouped. Reactions, edits and deletes on their way
 * are not shown (only when stuck, with Retry and Discard). Re-renders at most once per
 * animation frame, reusing the nodes of items that did not change and moving only those
 * that did; the focused message keeps focus. Text only ever goes in through text nodes.
 * @module ui/timeline-view
 */

import { attachmentNode, updateUploadNode, uploadNode } from './attachment-view.js';
import { fullTime, h } from './dom.js';
import { icon } from './icons.js';
import { messageNode, messageSig, quoteOf, reactorsText } from './message-view.js';
import { patchChildren } from './patch.js';
import { isRelation } from '../timeline.js';

/** Messages of one sender this close together are grouped (no repeated name, tighter). */
export const GROUP_WITHIN_MS = 5 * 60 * 1000;

/** A record of a group taken as the start of its signed roster rather than its creation. */
const BOOTSTRAP_AFTER_MS = 60000;

/**
 * The sentence for a verified roster event, from this user's point of view:
 * "alice added bob", "alice removed you", "You left", "carol changed the title to “x”".
 */
export function eventText(event, { me, nameOf, created = null }) {
  const who = (id) => (id === me.id ? 'You' : nameOf(id));
  const whom = (id) => (id === me.id ? 'you' : nameOf(id));
  const list = (ids) => joinNames(ids.map(whom));
  switch (event.op) {
    case 'create': {
      const others = event.subjects.filter((id) => id !== event.by);
      const bootstrap = created && event.created && Date.parse(event.created) - Date.parse(created) > BOOTSTRAP_AFTER_MS;
      if (bootstrap) return `${who(event.by)} signed this group’s member list (${list(event.subjects)}); changes are verified from here on`;
      return `${who(event.by)} created the group${event.title ? ` “${event.title}”` : ''}${others.length ? ` with ${list(others)}` : ''}`;
    }
    case 'add':
      return `${who(event.by)} added ${list(event.subjects)}`;
    case 'remove':
      return `${who(event.by)} removed ${list(event.subjects)}`;
    case 'leave':
      return `${who(event.by)} left`;
    case 'title':
      return `${who(event.by)} changed the title to “${event.title}”`;
    default:
      return `${who(event.by)} changed the group`;
  }
}

function joinNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export class TimelineView {
  /**
   * @param {HTMLElement} el the `.messages` log
   * @param {import('../chat.js').ChatApp} app
   * @param {import('./message-actions.js').MessageActions} [actions] what a message's actions do
   */
  constructor(el, app, actions = null) {
    this.el = el;
    this.app = app;
    this.actions = actions;
    this.nodes = new Map();
    this.frame = 0;
    this.wantOlder = false;
    this.stick = false;
    this.bySeq = new Map();
    if (actions) {
      el.addEventListener('keydown', (e) => actions.onKey(e, { itemOf: (seq) => this.bySeq.get(seq) }));
      // touch: a long press (the browser's contextmenu) opens a message's actions; a touch elsewhere closes them
      let pointer = 'mouse';
      el.addEventListener('pointerdown', (e) => {
        pointer = e.pointerType;
        for (const open of el.querySelectorAll('.msg.menu-open')) if (!open.contains(e.target)) open.classList.remove('menu-open');
      });
      el.addEventListener('contextmenu', (e) => {
        const msg = e.target.closest?.('.msg[data-seq]');
        if (pointer !== 'touch' || !msg?.querySelector('.msg-actions') || e.target.closest('a')) return;
        e.preventDefault();
        msg.classList.add('menu-open');
        msg.querySelector('.msg-actions button')?.focus({ preventScroll: true });
      });
    }
  }

  /** Render on the next animation frame (calls in between are one render). */
  schedule({ older = false } = {}) {
    this.wantOlder ||= older;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const older = this.wantOlder;
      this.wantOlder = false;
      this.render({ older });
    });
  }

  /** Keep the view at the bottom on the next render (after sending). */
  stickToBottom() {
    this.stick = true;
  }

  render({ older = false, first = false } = {}) {
    const app = this.app;
    const conv = app.get(app.openId);
    if (!conv) return;
    const el = this.el;
    const nearBottom = first || this.stick || el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    const fromBottom = el.scrollHeight - el.scrollTop;
    const { entries, pending, uploads = [] } = app.items(conv);
    const downloads = app.downloads;
    const nodes = [];
    const used = new Set();
    const reuse = (key, sig, make) => {
      let node = this.nodes.get(key);
      if (!node || node.dataset.sig !== sig) {
        node = make();
        node.dataset.sig = sig;
        this.nodes.set(key, node);
      }
      used.add(key);
      nodes.push(node);
    };
    if (!conv.loaded) reuse('edge', 'loading', () => h('div.history-edge', {}, 'Loading messages…'));
    else if (conv.hasMore) {
      reuse('edge', conv.loading ? 'older-loading' : 'older', () => h('div.history-edge', {}, conv.loading ? 'Loading older messages…' : h('button.link', { type: 'button', onclick: () => app.loadOlder(conv) }, 'Load older messages')));
    } else reuse('edge', 'start', () => h('div.history-edge', {}, 'Start of the conversation · end-to-end encrypted'));
    const focusedSeq = el.contains(document.activeElement) ? document.activeElement.closest?.('.msg[data-seq]')?.dataset.seq ?? null : null;
    const refs = new Map();
    this.bySeq = new Map();
    for (const entry of entries) {
      if (entry.kind !== 'message') continue;
      refs.set(`${entry.item.sender_id}|${entry.item.client_msg_id}`, entry);
      this.bySeq.set(entry.item.seq, entry);
    }
    const names = (id) => (id === app.me.id ? 'you' : app.nameOf(conv, id));
    let lastDay = null;
    let lastSender = null;
    let lastAt = 0;
    for (const entry of entries) {
      const when = entry.kind === 'message' ? entry.item.created : entry.event.created;
      const day = when ? new Date(when).toDateString() : lastDay;
      if (day !== lastDay) {
        reuse(`d${day}`, day, () => h('div.day', { role: 'separator' }, new Date(when).toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long' })));
        lastDay = day;
        lastSender = null;
      }
      if (entry.kind === 'event') {
        const text = eventText(entry.event, { me: app.me, nameOf: (id) => app.nameOf(conv, id), created: conv.created });
        reuse(`e${entry.event.n}`, text, () => eventNode(entry.event, text));
        lastSender = null;
        continue;
      }
      const { item, view } = entry;
      const at = Date.parse(item.created) || 0;
      const grouped = lastSender === item.sender_id && at - lastAt < GROUP_WITHIN_MS && at >= lastAt;
      const showSender = conv.kind === 'group' && !item.own && !grouped;
      lastSender = item.sender_id;
      lastAt = at;
      const ctx = this.context(conv, item, view, { grouped, showSender, refs, names, downloads });
      reuse(`s${item.seq}`, messageSig(item, view, ctx), () => messageNode(item, view, ctx));
    }
    for (const item of pending) {
      // a reaction, edit or delete on its way is not a message; it shows only if it is stuck
      if (isRelation(item.payload) && pendingState(item) === 'pending') continue;
      reuse(`p${item.client_msg_id}`, `${pendingState(item)}|${item.error ?? ''}|${item.notice ?? ''}|${item.text === null}`, () => pendingNode(item, conv, app));
    }
    for (const upload of uploads) {
      reuse(`u${upload.id}`, `${upload.phase}|${upload.error ?? ''}`, () => uploadNode(upload, app.uploads));
      updateUploadNode(nodes[nodes.length - 1], upload);
    }
    for (const key of [...this.nodes.keys()]) if (!used.has(key)) this.nodes.delete(key);
    patchChildren(el, nodes);
    if (focusedSeq !== null && !el.contains(document.activeElement)) el.querySelector(`.msg[data-seq="${focusedSeq}"]`)?.focus({ preventScroll: true });
    if (older && !first) el.scrollTop = el.scrollHeight - fromBottom;
    else if (nearBottom) el.scrollTop = el.scrollHeight;
    this.stick = false;
    if (conv.loaded && conv.hasMore && el.scrollHeight <= el.clientHeight + 10 && !conv.loading) {
      app.loadOlder(conv).catch(() => {});
    }
  }

  /** What message-view.js needs to draw one message (ctx). */
  context(conv, item, view, { grouped, showSender, refs, names, downloads }) {
    const app = this.app;
    const target = view.reply_to ? refs.get(`${view.reply_to.sender_id}|${view.reply_to.client_msg_id}`) ?? null : null;
    const canAct = Boolean(this.actions) && !conv.left && item.status === 'ok' && !view.deleted;
    const reactors = {};
    for (const [emoji, ids] of Object.entries(view.reactions)) reactors[emoji] = reactorsText(ids, { meId: app.me.id, nameOf: names });
    return {
      delivery: item.own ? app.deliveryOf(conv, item) : null,
      showSender,
      grouped,
      downloads,
      quote: view.reply_to ? quoteOf(target, { nameOf: (i) => (i.own ? 'You' : i.sender) }) : null,
      reactors,
      mine: new Set(Object.entries(view.reactions).filter(([, ids]) => ids.includes(app.me.id)).map(([emoji]) => emoji)),
      mayChange: canAct && app.rich.mayChange(item, view),
      canAct,
      on: this.actions ? this.actions.handlers(item, view, { target }) : {},
    };
  }
}

function eventNode(event, text) {
  return h('div.event.roster-event', { dataset: { op: event.op, n: event.n }, title: event.created ? `Signed and verified · ${fullTime(event.created)}` : 'Signed and verified' },
    icon('check', 'icon-inline'),
    h('span.event-text', {}, text),
    h('span.sr-only', {}, ' (verified)'));
}

/** A file message's bubble content: the attachment, then the caption (if any) as text. */
function fileContent(item, downloads) {
  return [attachmentNode(item, downloads), item.text ? h('p.msg-text', { dir: 'auto' }, item.text) : null];
}

/** `pending`, `blocked` or `failed`: what the person sees of a message not sent yet. */
function pendingState(item) {
  return item.state === 'blocked' || item.state === 'failed' ? item.state : 'pending';
}

function pendingNode(item, conv, app) {
  const state = pendingState(item);
  const stuck = state !== 'pending';
  const file = item.payload?.type === 'file' ? { file: item.payload.file, text: item.text } : null;
  return h(`div.msg.own.pending${stuck ? '.send-failed' : ''}`, { dataset: { state, delivery: 'pending', clientMsgId: item.client_msg_id } },
    h('span.sr-only.msg-by', {}, 'You: '),
    h(`div.bubble${file ? '.bubble-file' : ''}`, {},
      file ? fileContent(file, app.downloads) : h('p.msg-text', { dir: 'auto' }, isRelation(item.payload) ? relationText(item.payload) : item.text ?? '…'),
      h('span.meta', {},
        item.notice && !stuck ? h('span.notice', {}, item.notice, ' ') : null,
        stuck ? h('span.error-text', {}, item.error ?? 'Not sent.') : h('span.status.status-pending', { title: 'Sending' }, icon('clock', 'icon-inline'), h('span.sr-only', {}, ' Sending')))),
    stuck && h('div.pending-actions', {},
      item.payload !== null && h('button.link.small', { type: 'button', onclick: () => app.retryFailed(conv, item.client_msg_id) }, 'Retry'),
      h('button.link.small', { type: 'button', onclick: () => app.discardPending(conv, item.client_msg_id) }, 'Discard')));
}

/** What a stuck reaction, edit or delete says it was. */
function relationText(payload) {
  if (payload.type === 'reaction') return payload.remove ? `Taking back your reaction ${payload.emoji}` : `Your reaction ${payload.emoji}`;
  if (payload.type === 'edit') return `Your edit: ${payload.text}`;
  return 'Deleting your message';
}
