/**
 * The message log of the open conversation: messages by seq with day separators, the
 * verified roster events among them ("alice added bob"), flagged messages (replayed,
 * out of order, failed) as notes that never show their text, and this device's pending
 * messages at the end. Re-renders at most once per animation frame, reusing the nodes
 * of items that did not change and moving only those that did. Text only ever goes in
 * through text nodes.
 * @module ui/timeline-view
 */

import { attachmentNode, updateUploadNode, uploadNode } from './attachment-view.js';
import { fullTime, h, shortTime } from './dom.js';
import { icon } from './icons.js';
import { patchChildren } from './patch.js';

const FLAGGED_TEXT = {
  failed: 'This message could not be decrypted or verified.',
  not_for_device: 'Sent before this device was set up; not readable here.',
  unsupported: 'This message uses a format this app cannot show.',
  replayed: 'A repeated copy of an earlier message (replayed by the server); not shown.',
  out_of_order: 'This message arrived out of order (the server changed the order); not shown.',
  deleted: 'Message deleted.',
};

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
  /** @param {HTMLElement} el the `.messages` log @param {import('../chat.js').ChatApp} app */
  constructor(el, app) {
    this.el = el;
    this.app = app;
    this.nodes = new Map();
    this.frame = 0;
    this.wantOlder = false;
    this.stick = false;
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
    let lastDay = null;
    let lastSender = null;
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
      const item = entry.item;
      const showSender = conv.kind === 'group' && !item.own && lastSender !== item.sender;
      lastSender = item.sender;
      const delivery = item.own ? app.deliveryOf(conv, item) : null;
      reuse(`s${item.seq}`, `${item.id}|${item.status}|${delivery}|${showSender}`, () => messageNode(item, { delivery, showSender, downloads }));
    }
    for (const item of pending) {
      reuse(`p${item.client_msg_id}`, `${pendingState(item)}|${item.error ?? ''}|${item.notice ?? ''}|${item.text === null}`, () => pendingNode(item, conv, app));
    }
    for (const upload of uploads) {
      reuse(`u${upload.id}`, `${upload.phase}|${upload.error ?? ''}`, () => uploadNode(upload, app.uploads));
      updateUploadNode(nodes[nodes.length - 1], upload);
    }
    for (const key of [...this.nodes.keys()]) if (!used.has(key)) this.nodes.delete(key);
    patchChildren(el, nodes);
    if (older && !first) el.scrollTop = el.scrollHeight - fromBottom;
    else if (nearBottom) el.scrollTop = el.scrollHeight;
    this.stick = false;
    if (conv.loaded && conv.hasMore && el.scrollHeight <= el.clientHeight + 10 && !conv.loading) {
      app.loadOlder(conv).catch(() => {});
    }
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
  return [attachmentNode(item, downloads), item.text ? h('p.msg-text', {}, item.text) : null];
}

function messageNode(item, { delivery, showSender, downloads }) {
  const ok = item.status === 'ok';
  const isFile = ok && (item.file || item.fileRefused);
  const unavailable = item.status === 'not_for_device' || item.status === 'deleted';
  const notes = [];
  if (ok && item.legacy) notes.push('sent before messages were counted');
  if (ok && item.beforeRoster) notes.push('sent before the member list was signed');
  if (ok && item.note === 'earlier_identity') notes.push('signed under an earlier identity');
  if (ok && item.note === 'not_upgraded') notes.push('sender not upgraded');
  const bubble = h(`div.bubble${ok ? '' : unavailable ? '.bubble-unavailable' : '.bubble-failed'}${isFile ? '.bubble-file' : ''}`, {},
    isFile ? fileContent(item, downloads) : ok ? h('p.msg-text', {}, item.text)
      : h(`p.msg-text.msg-failed${unavailable ? '.msg-unavailable' : ''}`, { title: item.reason ?? '' },
        icon(unavailable ? 'lock' : 'alert', 'icon-inline'), ' ', FLAGGED_TEXT[item.status] ?? FLAGGED_TEXT.failed),
    h('span.meta', {},
      notes.length ? h('span.msg-note', {}, notes.join(' · ')) : null,
      h('time', { datetime: item.created, title: fullTime(item.created) }, shortTime(item.created)),
      item.own && ok && h(`span.status.status-${delivery}`, { title: delivery === 'read' ? 'Read' : 'Sent' }, icon(delivery === 'read' ? 'checks' : 'check', 'icon-inline'), h('span.sr-only', {}, delivery === 'read' ? ' Read' : ' Sent'))));
  return h(`div.msg.${item.own ? 'own' : 'other'}`, { dataset: { seq: item.seq, state: item.status, delivery: item.own ? delivery : '' } },
    showSender ? h('div.msg-sender', {}, item.sender) : h('span.sr-only.msg-by', {}, item.own ? 'You: ' : `${item.sender}: `),
    bubble);
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
      file ? fileContent(file, app.downloads) : h('p.msg-text', {}, item.text ?? '…'),
      h('span.meta', {},
        item.notice && !stuck ? h('span.notice', {}, item.notice, ' ') : null,
        stuck ? h('span.error-text', {}, item.error ?? 'Not sent.') : h('span.status.status-pending', { title: 'Sending' }, icon('clock', 'icon-inline'), h('span.sr-only', {}, ' Sending')))),
    stuck && h('div.pending-actions', {},
      item.payload !== null && h('button.link.small', { type: 'button', onclick: () => app.retryFailed(conv, item.client_msg_id) }, 'Retry'),
      h('button.link.small', { type: 'button', onclick: () => app.discardPending(conv, item.client_msg_id) }, 'Discard')));
}
