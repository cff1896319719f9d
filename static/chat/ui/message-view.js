/**
 * One stored message in the log: its bubble (the quoted message it replies to, its text
 * with http(s) links, or its attachment), "edited", "Message deleted", the reactions under
 * it (who reacted in the title and label), and its actions (react, reply, edit, delete),
 * shown on hover, on focus, and by a menu button on touch screens. Text only ever goes in
 * through text nodes; links are <a> elements made here, never markup.
 * @module ui/message-view
 */

import { attachmentNode } from './attachment-view.js';
import { fullTime, h, shortTime } from './dom.js';
import { icon } from './icons.js';
import { linkSegments } from '../linkify.js';

export const FLAGGED_TEXT = {
  failed: 'This message could not be decrypted or verified.',
  not_for_device: 'Sent before this device was set up; not readable here.',
  unsupported: 'This message uses a format this app cannot show.',
  replayed: 'A repeated copy of an earlier message (replayed by the server); not shown.',
  out_of_order: 'This message arrived out of order (the server changed the order); not shown.',
  deleted: 'Message deleted.',
};

/** Keys on a focused message (also in docs/browser.md). */
export const MESSAGE_KEYS = { reply: 'r', edit: 'e', remove: 'Delete', react: '+' };

/** A text as text nodes and links: `http(s)` URLs become <a> (new tab, no opener, no referrer). */
export function richText(text) {
  return linkSegments(text).map((part) => (part.href
    ? h('a.msg-link', { href: part.href, target: '_blank', rel: 'noopener noreferrer', referrerpolicy: 'no-referrer' }, part.text)
    : part.text));
}

/** The first line of a message's text for a quote (at most 140 characters). */
export function quoteLine(text) {
  const line = String(text ?? '').split('\n', 1)[0].trim();
  const chars = Array.from(line);
  return chars.length > 140 ? `${chars.slice(0, 140).join('')}…` : line;
}

/** What a quote shows of the message it names: `{name, text, state}`; state `ok`, `deleted` or `missing`. */
export function quoteOf(target, { nameOf }) {
  if (!target) return { name: '', text: 'Original message not loaded', state: 'missing' };
  const { item, view } = target;
  const name = nameOf(item);
  if (view.deleted) return { name, text: 'Message deleted', state: 'deleted' };
  if (item.status !== 'ok') return { name, text: 'Message not shown', state: 'missing' };
  const text = view.edited ?? item.text ?? '';
  if (item.file) return { name, text: quoteLine(text) || `File: ${item.file.name}`, state: 'ok' };
  return { name, text: quoteLine(text), state: 'ok' };
}

/** The line naming who reacted: "alice, bob and you". */
export function reactorsText(ids, { meId, nameOf }) {
  const names = ids.filter((id) => id !== meId).map(nameOf);
  if (ids.includes(meId)) names.push('you');
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** The node's signature: it is rebuilt only when one of these changes. */
export function messageSig(item, view, ctx) {
  return JSON.stringify([item.id, item.status, ctx.delivery, ctx.showSender, ctx.grouped, view.edited, view.deleted, view.reactions, ctx.quote, ctx.mayChange, ctx.canAct]);
}

/**
 * A stored message's node. `ctx`: `delivery` ('sent'|'read' for own), `showSender`,
 * `grouped` (follows a message of the same sender within minutes), `downloads`, `quote`
 * (quoteOf, or null), `reactors` (emoji -> who reacted, as text), `mine` (emoji this
 * user reacted with), `mayChange` (own: edit and delete), `canAct` (react and reply), and
 * `on` handlers: react(anchor), reply(), edit(), remove(), toggle(emoji), jump().
 */
export function messageNode(item, view, ctx) {
  const status = view.deleted ? 'deleted' : item.status;
  const ok = status === 'ok';
  const isFile = ok && (item.file || item.fileRefused);
  const unavailable = status === 'not_for_device' || status === 'deleted';
  const notes = [];
  if (ok && item.legacy) notes.push('sent before messages were counted');
  if (ok && item.beforeRoster) notes.push('sent before the member list was signed');
  if (ok && item.note === 'earlier_identity') notes.push('signed under an earlier identity');
  if (ok && item.note === 'not_upgraded') notes.push('sender not upgraded');
  const text = view.edited ?? item.text;
  const shownItem = view.edited === null ? item : { ...item, text };
  const quote = ok && ctx.quote ? quoteNode(ctx.quote, ctx.on.jump) : null;
  const body = isFile ? [attachmentNode(shownItem, ctx.downloads), text ? h('p.msg-text', { dir: 'auto' }, richText(text)) : null]
    : ok ? h('p.msg-text', { dir: 'auto' }, richText(text ?? ''))
      : h(`p.msg-text.msg-failed${unavailable ? '.msg-unavailable' : ''}`, { title: item.reason ?? '' },
        icon(unavailable ? 'lock' : 'alert', 'icon-inline'), ' ', FLAGGED_TEXT[status] ?? FLAGGED_TEXT.failed);
  const bubble = h(`div.bubble${ok ? '' : unavailable ? '.bubble-unavailable' : '.bubble-failed'}${isFile ? '.bubble-file' : ''}`, {},
    quote,
    body,
    h('span.meta', {},
      notes.length ? h('span.msg-note', {}, notes.join(' · ')) : null,
      ok && view.edited !== null ? h('span.msg-edited', {}, 'edited') : null,
      h('time', { datetime: item.created, title: fullTime(item.created) }, shortTime(item.created)),
      item.own && ok && h(`span.status.status-${ctx.delivery}`, { title: ctx.delivery === 'read' ? 'Read' : 'Sent' }, icon(ctx.delivery === 'read' ? 'checks' : 'check', 'icon-inline'), h('span.sr-only', {}, ctx.delivery === 'read' ? ' Read' : ' Sent'))));
  const acts = ok && ctx.canAct;
  const node = h(`div.msg.${item.own ? 'own' : 'other'}${ctx.grouped ? '.grouped' : ''}`, {
    dataset: { seq: item.seq, state: status, delivery: item.own ? ctx.delivery : '', ...(view.edited !== null ? { edited: '' } : {}) },
    tabindex: -1,
    'aria-keyshortcuts': acts ? (ctx.mayChange ? 'R + E Delete' : 'R +') : null,
  },
  ctx.showSender ? h('div.msg-sender', {}, item.sender) : h('span.sr-only.msg-by', {}, item.own ? 'You: ' : `${item.sender}: `),
  h('div.msg-row', {}, bubble, acts ? actionsNode(ctx) : null),
  ok ? reactionsNode(view.reactions, ctx) : null);
  return node;
}

function quoteNode(quote, jump) {
  return h(`button.quote.quote-${quote.state}`, { type: 'button', onclick: jump, title: 'Show the original message' },
    quote.name ? h('span.quote-sender', {}, quote.name) : null,
    h('span.quote-text', { dir: 'auto' }, quote.text));
}

function actionsNode(ctx) {
  const button = (name, label, run, extra = '') => h(`button.msg-action${extra}`, { type: 'button', 'aria-label': label, title: label, onclick: (e) => run(e.currentTarget) }, icon(name, 'icon-inline'));
  const toolbar = h('div.msg-actions', { role: 'toolbar', 'aria-label': 'Message actions' },
    button('smile', 'React', (anchor) => ctx.on.react(anchor), '.act-react'),
    button('reply', 'Reply', () => ctx.on.reply(), '.act-reply'),
    ctx.mayChange && button('edit', 'Edit', () => ctx.on.edit(), '.act-edit'),
    ctx.mayChange && button('trash', 'Delete for everyone', () => ctx.on.remove(), '.act-delete'));
  const more = h('button.msg-more', { type: 'button', 'aria-label': 'Message actions', 'aria-expanded': 'false', title: 'Message actions' }, icon('more', 'icon-inline'));
  more.addEventListener('click', () => {
    const msg = more.closest('.msg');
    const open = !msg.classList.contains('menu-open');
    for (const other of document.querySelectorAll('.msg.menu-open')) other.classList.remove('menu-open');
    msg.classList.toggle('menu-open', open);
    more.setAttribute('aria-expanded', String(open));
    if (open) toolbar.querySelector('button')?.focus();
  });
  return h('div.msg-tools', {}, more, toolbar);
}

function reactionsNode(reactions, ctx) {
  const entries = Object.entries(reactions);
  if (!entries.length) return null;
  return h('div.reactions', { role: 'group', 'aria-label': 'Reactions' },
    entries.map(([emoji, ids]) => {
      const who = ctx.reactors[emoji] ?? '';
      const mine = ctx.mine.has(emoji);
      const label = `${emoji} ${ids.length}: ${who}${mine ? ' (select to take yours back)' : ''}`;
      return h(`button.reaction${mine ? '.mine' : ''}`, {
        type: 'button',
        'aria-pressed': String(mine),
        'aria-label': label,
        title: `${who} reacted with ${emoji}`,
        dataset: { emoji, who },
        disabled: !ctx.canAct,
        onclick: () => ctx.on.toggle(emoji),
      }, h('span.reaction-emoji', { 'aria-hidden': 'true' }, emoji), h('span.reaction-count', { 'aria-hidden': 'true' }, String(ids.length)));
    }));
}
