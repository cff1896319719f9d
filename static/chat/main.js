/**
 * Entry point of the chat page: who is logged in, then set up / unlock this device,
 * then the chat or the security page (client-side routes / and /security/).
 * @module main
 */

import { ChatApp } from './chat.js';
import * as device from './device.js';
import { h, replace } from './ui/dom.js';
import { ChatView } from './ui/chat-view.js';
import { SecurityView } from './ui/security-view.js';
import { setupScreen, unlockScreen } from './ui/setup.js';

const root = document.getElementById('app');
const me = { id: Number(root.dataset.userId), username: root.dataset.username };

async function prepareDevice() {
  let record = await device.storedRecord(me.id);
  let result;
  if (!record) {
    result = await setupScreen(root, { me });
  } else {
    result = await unlockScreen(root, { me, record });
  }
  record = result.record;
  let status = 'active';
  try {
    status = await device.deviceStatus(record);
  } catch {
    /* offline: the socket will tell */
  }
  if (status !== 'active') {
    result = await setupScreen(root, {
      me,
      reason: status === 'revoked'
        ? 'This device was revoked (from another device or after a reset). Set this browser up again with new keys.'
        : 'This browser’s keys are not registered to your account. Set it up again.',
    });
  }
  return result;
}

async function main() {
  replace(root, h('div.boot', {}, 'Loading…'));
  const { record: firstRecord, keys } = await prepareDevice();
  let record = firstRecord;
  const app = new ChatApp({ me, deviceId: record.device_id, keys });
  replace(root, h('div.boot', {}, 'Loading conversations…'));
  await app.start();
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
      security = new SecurityView(securityRoot, app, { record, navigate, onRecord: (r) => { record = r; } });
      document.title = 'Security · e2ee chat';
      return;
    }
    securityRoot.hidden = true;
    chatRoot.hidden = false;
    security?.destroy();
    security = null;
    const id = Number(url.searchParams.get('c'));
    if (id && app.get(id)) {
      document.title = `${app.titleOf(app.get(id))} · e2ee chat`;
      chat.renderList();
      app.open(id).catch(() => {});
    } else {
      document.title = 'Chat · e2ee chat';
      app.close();
      chat.renderList();
    }
  }
  window.addEventListener('popstate', () => route());
  document.addEventListener('click', (event) => {
    const link = event.target.closest?.('a[href="/security/"]');
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      navigate('/security/');
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
