/**
 * Entry point of the chat page: who is logged in, then this device (ui/setup.js: set
 * up, unlock, link or reset), then the chat with the link inbox and history transfer
 * (ui/identity-tray.js), and the client-side routes: `/`, `/security/` and a contact's
 * safety number page `/security/?contact=<username>`.
 * @module main
 */

import { ChatApp } from './chat.js';
import { h, replace } from './ui/dom.js';
import { ChatView } from './ui/chat-view.js';
import { SafetyView } from './ui/safety-view.js';
import { SecurityView } from './ui/security-view.js';
import { deviceFlow } from './ui/setup.js';
import { startIdentity } from './ui/identity-tray.js';

const root = document.getElementById('app');
const me = { id: Number(root.dataset.userId), username: root.dataset.username };

async function main() {
  replace(root, h('div.boot', {}, 'Loading…'));
  const { record: firstRecord, keys } = await deviceFlow(root, { me });
  let record = firstRecord;
  const app = new ChatApp({ me, deviceId: record.device_id, keys });
  replace(root, h('div.boot', {}, 'Loading conversations…'));
  await app.start();
  await startIdentity(app, { me, deviceId: record.device_id, keys });
  const chatRoot = h('div.view');
  const securityRoot = h('div.view');
  replace(root, chatRoot, securityRoot);
  let security = null;
  const navigate = (path, { push = true } = {}) => {
    if (push && path !== location.pathname + location.search) history.pushState(null, '', path);
    route();
  };
  const chat = new ChatView(chatRoot, app, { navigate });
  function route() {
    const url = new URL(location.href);
    if (url.pathname.startsWith('/security')) {
      chatRoot.hidden = true;
      securityRoot.hidden = false;
      security?.destroy();
      const contact = url.searchParams.get('contact');
      security = contact
        ? new SafetyView(securityRoot, app, { username: contact, navigate })
        : new SecurityView(securityRoot, app, { record, navigate, onRecord: (r) => { record = r; } });
      document.title = contact ? `Safety number with ${contact} · e2ee chat` : 'Security · e2ee chat';
      return;
    }
    securityRoot.hidden = true;
    chatRoot.hidden = false;
    security?.destroy();
    security = null;
    const wanted = url.searchParams.get('c');
    const id = /^[1-9]\d{0,15}$/.test(wanted ?? '') ? Number(wanted) : null;
    if (id && app.get(id)) {
      document.title = `${app.titleOf(app.get(id))} · e2ee chat`;
      chat.renderList();
      app.open(id).catch(() => {});
    } else if (wanted !== null) {
      // not a conversation of this user (no such id, someone else's, or not a number)
      document.title = 'Conversation not found · e2ee chat';
      app.close();
      chat.renderNotFound();
    } else {
      document.title = 'Chat · e2ee chat';
      app.close();
      chat.renderList();
    }
  }
  window.addEventListener('popstate', () => route());
  document.addEventListener('click', (event) => {
    const link = event.target.closest?.('a[href^="/security/"]');
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      navigate(link.getAttribute('href'));
    }
  });
  route();
  document.body.dataset.ready = 'true';
  void chat;
}

main().catch((error) => {
  console.error('the app failed to start', error?.name);
  replace(root, h('main.setup-card', {}, h('h1', {}, 'Something went wrong'), h('p', {}, 'The chat could not start. Reload the page to try again.'), h('a.button.primary', { href: location.pathname }, 'Reload')));
});
