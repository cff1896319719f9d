/**
 * The chat screen: the sidebar (me, connection state, search, conversation list) and
 * the conversation pane (header, notices, message log (ui/timeline-view.js), typing,
 * composer with attachments (ui/attach-controls.js)). Reads state from ChatApp and re-renders on its `change` events; a change to
 * the open conversation updates its parts in place, so the composer and what is being
 * typed in it stay. Message text is only ever set with textContent.
 * @module ui/chat-view
 */

import { previewOf } from '../file-kinds.js';
import { AttachControls } from './attach-controls.js';
import { avatar, h, replace, shortTime, toast } from './dom.js';
import { membersDialog, newGroupDialog } from './dialogs.js';
import { icon } from './icons.js';
import { logoutForm } from './logout.js';
import { renderNotices } from './conversation-notices.js';
import { blockedReason, renderRequestBanner, requestSubline } from './request-banner.js';
import { NodeCache, patchChildren } from './patch.js';
import { findPeople, peopleNote } from './people-search.js';
import { SearchView } from './search-view.js';
import { TimelineView } from './timeline-view.js';
import { Composer } from './composer.js';
import { MessageActions } from './message-actions.js';

/** The app's `change` events after which the conversation list is drawn again. */
export const LIST_CHANGES = new Set(['list', 'presence', 'trust', 'notices', 'conversation', 'connection']);

const CONNECTION_TEXT = {
  idle: 'Starting…',
  connecting: 'Connecting…',
  online: 'Connected',
  waiting: 'Offline',
  offline: 'Offline · no network',
  closed: 'Disconnected',
};

export class ChatView {
  constructor(root, app, { navigate }) {
    this.root = root;
    this.app = app;
    this.navigate = navigate;
    this.listNodes = new NodeCache();
    this.build();
    app.addEventListener('change', (event) => this.onChange(event.detail));
    this.renderList();
    this.renderConnection();
    this.renderPane();
    this.countdown = setInterval(() => this.app.connection.state === 'waiting' && this.renderConnection(), 1000);
  }

  build() {
    const me = this.app.me;
    this.connectionEl = h('div.connection', { role: 'status', 'aria-live': 'polite', id: 'connection-state' });
    this.searchInput = h('input', { id: 'conv-search', type: 'search', placeholder: 'Search messages or start a chat', autocomplete: 'off', 'aria-label': 'Search conversations, people and messages', 'aria-keyshortcuts': 'Control+K /' });
    this.searchInput.addEventListener('input', () => this.onSearch());
    this.searchInput.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.searchInput.value = '';
        this.onSearch();
      }
    });
    this.peopleEl = h('ul.people-results', { 'aria-label': 'People', hidden: true });
    this.listEl = h('ul.conv-list', { 'aria-label': 'Conversations' });
    this.messageSearch = new SearchView({ app: this.app, input: this.searchInput, chat: this, navigate: this.navigate });
    this.notifyButton = h('button.icon-button', { type: 'button', onclick: () => this.toggleNotifications() });
    this.sidebar = h('aside.sidebar', { 'aria-label': 'Conversations' },
      h('header.sidebar-head', {},
        avatar(me.username),
        h('div.me-name', {}, me.username),
        this.connectionEl,
        h('nav.toolbar', { 'aria-label': 'Main' },
          h('button.icon-button', { type: 'button', 'aria-label': 'New group', title: 'New group', onclick: () => this.newGroup() }, icon('users')),
          this.notifyButton,
          h('a.icon-button', { href: '/security/', 'aria-label': 'Security and devices', title: 'Security and devices', id: 'security-link' }, icon('shield')),
          logoutForm({ compact: true }))),
      h('div.search', {}, this.searchInput),
      this.peopleEl,
      this.listEl,
      this.messageSearch.el);
    this.pane = h('main.pane', { 'aria-label': 'Conversation' });
    this.layout = h('div.chat-layout', {}, this.sidebar, this.pane);
    replace(this.root, this.layout);
    this.renderNotifyButton();
    // a file dropped outside the conversation pane must not open it (the page, with the
    // unlocked keys, would be left): the pane takes drops, everywhere else refuses them
    for (const type of ['dragover', 'drop']) {
      document.addEventListener(type, (e) => {
        if (e.defaultPrevented || ![...(e.dataTransfer?.types ?? [])].includes('Files')) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'none';
      });
    }
    document.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        this.searchInput.focus();
      }
    });
  }

  onChange({ what, id }) {
    if (LIST_CHANGES.has(what)) this.scheduleList();
    if (what === 'connection') {
      this.renderConnection();
      this.renderHeaderAndAlerts();
    }
    if (what === 'fatal') this.renderFatal();
    if (what === 'navigate') this.navigate(`/?c=${id}`);
    const open = this.app.openId;
    if (what === 'open') {
      this.renderPane();
      return;
    }
    if (open === null || !this.timelineView) return;
    if (id === open) {
      if (what === 'messages' || what === 'older') this.timelineView.schedule({ older: what === 'older' });
      if (what === 'typing') this.renderTyping();
      if (what === 'conversation' || what === 'notices') {
        this.renderHeaderAndAlerts();
        this.timelineView.schedule();
      }
    }
    if (what === 'presence' || what === 'trust' || what === 'devices') this.renderHeaderAndAlerts();
  }

  /** Render the conversation list on the next animation frame (bursts render once). */
  scheduleList() {
    if (this.listFrame) return;
    this.listFrame = requestAnimationFrame(() => {
      this.listFrame = 0;
      this.renderList();
    });
  }

  // --- sidebar -------------------------------------------------------------------------------

  renderConnection() {
    const { state, retryAt } = this.app.connection;
    this.connectionEl.dataset.state = state;
    const wait = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
    const text = state === 'waiting' ? `Offline · retrying in ${wait} s` : CONNECTION_TEXT[state] ?? state;
    replace(this.connectionEl, h('span.dot', { 'aria-hidden': 'true' }), h('span.connection-text', {}, text),
      state === 'waiting' && h('button.link.small', { type: 'button', onclick: () => this.app.socket.retryNow() }, 'Retry now'));
  }

  renderFatal() {
    const code = this.app.fatal;
    const message = code === 4401 ? 'You were logged out.' : 'This device was revoked or your account was disabled.';
    replace(this.pane, h('div.empty', {}, h('h2', {}, 'Disconnected'), h('p', {}, message),
      code === 4401 ? h('a.button.primary', { href: '/login/' }, 'Log in again') : h('a.button.primary', { href: '/' }, 'Reload')));
  }

  renderNotifyButton() {
    const on = this.app.notifier.enabled;
    replace(this.notifyButton, icon(on ? 'bell' : 'bellOff'));
    this.notifyButton.setAttribute('aria-label', on ? 'Desktop notifications on (turn off)' : 'Desktop notifications off (turn on)');
    this.notifyButton.title = this.notifyButton.getAttribute('aria-label');
    this.notifyButton.setAttribute('aria-pressed', String(on));
  }

  async toggleNotifications() {
    if (this.app.notifier.enabled) await this.app.notifier.disable();
    else if (!(await this.app.notifier.enable())) toast('Notifications are blocked by the browser.', 'error');
    this.renderNotifyButton();
  }

  onSearch() {
    this.renderList();
    this.messageSearch.schedule();
    clearTimeout(this.searchTimer);
    const q = this.searchInput.value.trim();
    if (!q) {
      this.peopleEl.hidden = true;
      return;
    }
    this.searchTimer = setTimeout(async () => {
      try {
        const users = await findPeople(q);
        const people = users?.filter((u) => u.username !== this.app.me.username) ?? [];
        this.peopleEl.hidden = false;
        replace(this.peopleEl, h('li.section-label', {}, 'People'),
          people.length ? people.map((u) => h('li', {}, h('button.person', { type: 'button', onclick: () => this.startDirect(u.username), 'aria-label': `Chat with ${u.username}` }, avatar(u.username), h('span', {}, u.username))))
            : peopleNote(users && people));
      } catch {
        /* offline */
      }
    }, 150);
  }

  async startDirect(username) {
    try {
      const conv = await this.app.startDirect(username);
      this.searchInput.value = '';
      this.onSearch();
      this.navigate(`/?c=${conv.id}`);
    } catch (error) {
      toast(error.detail ?? error.message, 'error');
    }
  }

  async newGroup() {
    const result = await newGroupDialog({ me: this.app.me });
    if (!result) return;
    try {
      const conv = await this.app.createGroup(result.title, result.users);
      this.navigate(`/?c=${conv.id}`);
    } catch (error) {
      toast(error.detail ?? error.message, 'error');
    }
  }

  renderList() {
    const unread = this.app.list().reduce((sum, c) => sum + (c.unread || 0), 0);
    const base = document.title.replace(/^\(\d+\) /, '');
    document.title = unread ? `(${unread}) ${base}` : base;
    const q = this.searchInput.value.trim().toLowerCase();
    const convs = this.app.list().filter((c) => !q || this.app.titleOf(c).toLowerCase().includes(q) || c.members.some((m) => m.username.toLowerCase().includes(q)));
    if (!convs.length) {
      this.listNodes.sweep();
      replace(this.listEl, h('li.muted.empty-list', {}, q ? 'No conversation matches.' : 'No conversations yet. Search for someone to start one.'));
      return;
    }
    const items = convs.map((conv) => {
      const title = this.app.titleOf(conv);
      const peer = this.app.peerOf(conv);
      const online = peer && this.app.online.has(peer);
      const notices = this.app.noticesFor(conv);
      const current = conv.id === this.app.openId;
      const sub = this.subline(conv, online);
      const warn = notices.length ? (notices.some((n) => n.level === 'danger' || n.blocking) ? 'danger' : 'warn') : '';
      const when = shortTime(conv.last_activity);
      const sig = JSON.stringify([title, peer, online, sub, warn, when, conv.unread, conv.kind]);
      // one <li><a> per conversation for good, its contents replaced when they change (the
      // link's children take no clicks, so a click in progress always lands on the link)
      const li = this.listNodes.get(`c${conv.id}`, String(conv.id), () => h('li', {}, h('a.conv-item', {
        href: `/?c=${conv.id}`,
        dataset: { id: conv.id },
        onclick: (e) => {
          e.preventDefault();
          this.navigate(`/?c=${conv.id}`);
        },
      })));
      const link = li.firstElementChild;
      if (current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
      link.classList.toggle('is-request', Boolean(conv.request));
      if (link.dataset.content !== sig) {
        link.dataset.content = sig;
        replace(link,
          h('span.avatar-wrap', {}, avatar(conv.kind === 'group' ? '#' + title : title, conv.kind === 'group' ? 'group' : ''), peer && h(`span.presence${online ? '.online' : ''}`, { 'aria-label': online ? 'online' : 'offline', role: 'img' })),
          h('span.conv-main', {},
            h('span.conv-title', {}, title),
            h('span.conv-sub', {}, ...subParts(sub))),
          h('span.conv-side', {},
            h('time.conv-time', { datetime: conv.last_activity ?? '' }, when),
            warn ? h(`span.badge.badge-warn${warn === 'danger' ? '.badge-danger' : ''}`, { 'aria-label': 'Security warning', title: 'Security warning' }, '!') : null,
            conv.unread ? h('span.badge', { 'aria-label': `${conv.unread} unread` }, String(conv.unread)) : null));
      }
      return li;
    });
    this.listNodes.sweep();
    patchChildren(this.listEl, items);
  }

  /** The line under a conversation's title in the list. */
  subline(conv, online) {
    if (this.app.rosters.tampered(conv.id)) return 'Possible tampering';
    if (conv.left) {
      const how = this.app.departure(conv);
      if (how?.op === 'remove') return `${how.by} removed you`;
      if (how?.op === 'leave') return 'You left';
      return 'You are no longer a member';
    }
    const request = requestSubline(conv);
    if (request) return request;
    if (conv.kind === 'group') {
      const count = this.app.membersOf(conv).length;
      return `${count} ${count === 1 ? 'member' : 'members'}`;
    }
    const newest = this.app.newest(conv);
    const preview = previewOf(newest);
    if (preview) return newest.own ? `You: ${preview}` : conv.kind === 'group' ? `${newest.sender}: ${preview}` : preview;
    return online ? 'Online' : 'Direct chat';
  }

  // --- the conversation pane ---------------------------------------------------------------

  renderPane() {
    const conv = this.app.get(this.app.openId);
    this.layout.dataset.view = conv ? 'conversation' : 'list';
    this.renderList();
    this.timelineView = null;
    if (!conv) {
      replace(this.pane, h('div.empty', {}, h('div.empty-mark', { 'aria-hidden': 'true' }, icon('lock')), h('h2', {}, 'End-to-end encrypted chat'),
        h('p', {}, 'Pick a conversation, or search for someone to start one. Messages are encrypted in this browser; the server sees only ciphertext.')));
      return;
    }
    this.headerEl = h('header.pane-head');
    this.alertsEl = h('div.alerts', { 'aria-live': 'polite' });
    this.requestEl = h('div.alerts.request-slot');
    this.messagesEl = h('div.messages', { role: 'log', 'aria-label': `Messages with ${this.app.titleOf(conv)}`, tabindex: 0, 'aria-live': 'polite' });
    this.messagesEl.addEventListener('scroll', () => this.onScroll());
    this.typingEl = h('div.typing', { 'aria-live': 'polite' });
    this.composer = this.buildComposer(conv);
    this.timelineView = new TimelineView(this.messagesEl, this.app, this.actions);
    replace(this.pane, this.headerEl, this.alertsEl, this.requestEl, this.messagesEl, this.typingEl, this.attach.tray, this.composer, this.attach.dropHint);
    this.renderHeaderAndAlerts();
    this.timelineView.render({ first: true });
    this.renderTyping();
    if (window.matchMedia('(min-width: 760px)').matches) this.textarea?.focus();
  }

  /** The pane for a chat link (`/?c=…`) that names no conversation of this user. */
  renderNotFound() {
    this.layout.dataset.view = 'conversation';
    this.timelineView = null;
    replace(this.pane, h('div.empty.not-found', { role: 'alert' },
      h('div.empty-mark', { 'aria-hidden': 'true' }, icon('alert')),
      h('h2', {}, 'Conversation not found'),
      h('p', {}, 'This link does not lead to a conversation of yours. It may be mistyped, or the conversation belongs to other people.'),
      h('a.button.primary', { href: '/', onclick: (e) => { e.preventDefault(); this.navigate('/'); } }, 'Back to conversations')));
  }

  /** Header, notices and composer state of the open conversation, updated in place. */
  renderHeaderAndAlerts() {
    const conv = this.app.get(this.app.openId);
    if (!conv || !this.headerEl) return;
    const peer = this.app.peerOf(conv);
    const online = peer && this.app.online.has(peer);
    const title = this.app.titleOf(conv);
    // presence is known only while connected (the server reports it to connected devices)
    const { state } = this.app.connection;
    const sub = conv.kind === 'group'
      ? this.app.membersOf(conv).map((m) => m.username).join(', ')
      : state === 'online' ? (online ? 'Online' : 'Offline') : state === 'idle' || state === 'connecting' ? 'Connecting…' : 'You are offline';
    const verified = this.app.peerVerified(conv);
    const sig = JSON.stringify([conv.id, title, sub, online, verified, conv.kind]);
    if (this.headerEl.dataset.sig !== sig) this.renderHeader(conv, { peer, online, title, sub, verified, sig });
    this.messagesEl?.setAttribute('aria-label', `Messages with ${title}`);
    renderNotices(this.alertsEl, this.app.noticesFor(conv), { navigate: this.navigate, onDone: () => this.renderHeaderAndAlerts() });
    renderRequestBanner(this.requestEl, { app: this.app, conv, navigate: this.navigate });
    this.updateComposerState();
  }

  /** The header's contents (only when they changed: a click on Members in progress survives). */
  renderHeader(conv, { peer, online, title, sub, verified, sig }) {
    this.headerEl.dataset.sig = sig;
    replace(this.headerEl,
      h('button.icon-button.back', { type: 'button', 'aria-label': 'Back to conversations', onclick: () => this.navigate('/') }, icon('back')),
      h('span.avatar-wrap', {}, avatar(conv.kind === 'group' ? '#' + title : title, conv.kind === 'group' ? 'group' : ''), peer && h(`span.presence${online ? '.online' : ''}`, { role: 'img', 'aria-label': online ? 'online' : 'offline' })),
      h('div.pane-title', {}, h('h2', { id: 'pane-title' }, title), h('div.pane-sub', {}, sub,
        verified ? h('span.tag.tag-ok.verified-tag', { title: 'You compared the safety number with this person and marked them verified' }, icon('check', 'icon-inline'), ' verified') : null)),
      conv.kind === 'group' && h('button.secondary.small', { type: 'button', onclick: () => membersDialog({ app: this.app, conv }) }, 'Members'));
  }

  /**
   * The composer (ui/composer.js: growth, the character cap, reply and edit modes) with
   * the attach controls and Send; returns the element that holds them.
   */
  buildComposer(conv) {
    this.box = new Composer();
    this.textarea = this.box.textarea;
    this.sendButton = h('button.send', { type: 'submit', 'aria-label': 'Send', title: 'Send (Enter)' }, icon('send'));
    this.paneListeners?.abort();
    this.paneListeners = new AbortController();
    this.attach = new AttachControls({ dropTarget: this.pane, textarea: this.textarea, onChange: () => this.updateComposerState(), signal: this.paneListeners.signal });
    this.actions = new MessageActions({ app: this.app, conv, composer: this.box, log: () => this.messagesEl });
    const form = h('form.composer', { 'aria-label': 'Write a message' }, this.attach.button, this.attach.input, this.textarea, this.sendButton);
    const submit = () => {
      const text = this.textarea.value;
      const files = this.attach.staged.length;
      if ((!text.trim() && !files) || this.sendButton.disabled) return;
      if (this.box.over) {
        this.box.refuse(`Not sent: the message is ${this.box.length.toLocaleString('en')} characters, over the limit of 16,000. Shorten it, or send it in parts.`);
        return;
      }
      const mode = this.box.mode;
      try {
        if (mode?.kind === 'edit') this.actions.saveEdit(mode.item, text);
        else if (!files) this.app.rich.sendText(conv, text, mode?.kind === 'reply' ? mode.item : null);
      } catch (error) {
        toast(error.message, 'error');
        return;
      }
      this.box.sent();
      if (mode?.kind === 'edit') return;
      this.timelineView?.stickToBottom();
      if (!files) return;
      this.attach.take().forEach(({ file, name }, i) => {
        try {
          this.app.sendFile(conv, file, { name, caption: i === 0 && text.trim() ? text : '' });
        } catch (error) {
          toast(error.message, 'error');
        }
      });
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    this.textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    this.textarea.addEventListener('input', () => {
      if (this.textarea.value) this.app.typing(conv);
    });
    return h('div.composer-wrap', {}, this.box.contextEl, this.box.limitEl, form);
  }

  /** Enable or disable the composer by whether this device may send to the conversation now. */
  updateComposerState() {
    const conv = this.app.get(this.app.openId);
    if (!conv || !this.textarea) return;
    const state = this.app.sendState(conv);
    const blocked = blockedReason(this.app, conv); // you blocked them: unblock to write
    this.textarea.disabled = state.kind === 'left' || state.kind === 'tampered' || Boolean(blocked);
    this.sendButton.disabled = !state.ok || Boolean(blocked);
    this.attach?.setDisabled(!state.ok || Boolean(blocked));
    this.textarea.placeholder = blocked ?? (state.ok ? 'Message' : state.reason);
  }

  renderTyping() {
    const conv = this.app.get(this.app.openId);
    if (!conv || !this.typingEl) return;
    const who = this.app.typingIn(conv);
    this.typingEl.textContent = who.length ? `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…` : '';
  }

  onScroll() {
    const el = this.messagesEl;
    const conv = this.app.get(this.app.openId);
    if (conv && el.scrollTop < 300 && conv.hasMore && !conv.loading) {
      this.app.loadOlder(conv).catch(() => toast('Could not load older messages.', 'error'));
    }
  }
}

/** The list's line under a title: a file preview's "📎" drawn as an icon (not every system has an emoji font). */
function subParts(sub) {
  return sub.includes('📎 ') ? sub.split('📎 ').flatMap((part, i) => (i ? [icon('paperclip', 'icon-inline'), h('span.sr-only', {}, 'File: '), part] : [part])) : [sub];
}
