/**
 * "Link this browser" on the new device (PROTOCOL §7.2): a name and a passphrase (the
 * keys are made meanwhile), then the link code, large, in five groups of four, while it
 * waits for a device of the account to approve; then it finishes the link (link.js) and
 * resolves {record, keys}. Cancel withdraws the request. A denial, an expiry or a failed
 * check says so plainly and offers to start again.
 * @module ui/link-screen
 */

import * as device from '../device.js';
import { ApiError } from '../api.js';
import { LinkError, cancelLink, completeLink, requestLink, waitForApproval } from '../link.js';
import { h } from './dom.js';
import { passphraseField } from './passphrase-field.js';
import { card, errorBox, show } from './card.js';
import { linkCodeView } from './link-code.js';
import { deviceName, deviceNameInput } from './device-name.js';

function remaining(expires) {
  const seconds = Math.max(0, Math.round((Date.parse(expires) - Date.now()) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/**
 * The whole link on the new device. `keys` (extractable DeviceKeys) and `passphrase`
 * are given for a device that already has keys (§7.5); otherwise the screen asks for a
 * name and a new passphrase and makes the keys. `back()` returns to the screen before.
 */
export function linkScreen(root, { me, keys = null, passphrase = null, reason = null, back }) {
  return new Promise((resolve) => {
    let keysPromise = keys ? Promise.resolve(keys) : device.makeKeys();
    keysPromise.catch(() => {});
    if (passphrase) {
      waitScreen(root, { me, name: deviceName(), keysPromise, passphrase, back, again: () => linkScreen(root, { me, keys, passphrase, reason, back }) }).then(resolve);
      return;
    }
    const name = deviceNameInput();
    const pass = passphraseField({ label: 'Passphrase' });
    const errors = errorBox();
    const submit = h('button.primary', { type: 'submit' }, 'Show link code');
    const form = h('form.stack', { novalidate: true },
      h('label', { for: 'device-name' }, 'Device name'),
      name,
      h('p.hint', {}, 'Your other device shows this name when it asks you to approve.'),
      pass.el,
      errors.el,
      submit);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      errors.clear();
      const problem = !name.value.trim() ? 'Name this device.' : pass.check();
      if (problem) return errors.show(problem);
      const chosen = pass.value;
      pass.clear();
      waitScreen(root, { me, name: name.value.trim(), keysPromise, passphrase: chosen, back, again: () => linkScreen(root, { me, back }) }).then(resolve);
      return undefined;
    });
    show(root, card('Link this browser',
      reason && h('div.callout.callout-warn', { role: 'alert' }, reason),
      h('p.lead', {}, 'This browser joins your account as a new device. Choose a passphrase for its keys here; next you will see a code to compare with your other device.'),
      form,
      h('p.alt', {}, h('button.link', { type: 'button', onclick: () => back().then(resolve) }, 'Back'))), name);
  });
}

/** Make the request, show the code, wait, finish. */
function waitScreen(root, { me, name, keysPromise, passphrase, back, again }) {
  return new Promise((resolve) => {
    const status = h('p.link-status', { role: 'status', 'aria-live': 'polite' }, 'Making this browser’s keys…');
    const body = h('div.link-body', {}, h('div.spinner', { 'aria-hidden': 'true' }), status);
    const cancel = h('button.secondary', { type: 'button' }, 'Cancel');
    const actions = h('div.row', {}, cancel);
    show(root, card('Link this browser', body, actions));
    const controller = new AbortController();
    let link = null;
    let ticker = null;
    cancel.addEventListener('click', async () => {
      controller.abort();
      clearInterval(ticker);
      if (link) await cancelLink(link);
      back().then(resolve);
    });
    const fail = (title, message) => {
      clearInterval(ticker);
      const retry = h('button.primary', { type: 'button', onclick: () => again().then(resolve) }, 'Start again');
      show(root, card(title, h('div.callout.callout-danger', { role: 'alert' }, message),
        h('div.row', {}, retry, h('button.secondary', { type: 'button', onclick: () => back().then(resolve) }, 'Back'))), retry);
    };
    (async () => {
      try {
        const keys = await keysPromise;
        status.textContent = 'Asking your account to add this browser…';
        link = await requestLink({ me, name, keys });
        const expiry = h('span.link-expiry', {}, remaining(link.request.expires));
        ticker = setInterval(() => {
          expiry.textContent = remaining(link.request.expires);
        }, 1000);
        body.replaceChildren(
          h('p.lead', {}, 'On a device where you are signed in, open the chat. It asks you to approve “', name, '”. Approve only if it shows exactly this code:'),
          linkCodeView(link.code, { id: 'link-code' }),
          h('div.link-waiting', {}, h('div.spinner', { 'aria-hidden': 'true' }), status),
          h('p.hint', {}, 'The request expires in ', expiry, '.'));
        status.textContent = 'Waiting for approval…';
        document.getElementById('link-code')?.closest('main')?.querySelector('h1')?.focus();
        const approved = await waitForApproval(link, { signal: controller.signal });
        clearInterval(ticker);
        cancel.disabled = true;
        status.textContent = 'Approved. Setting up this browser…';
        resolve(await completeLink({ me, link, approved, passphrase }));
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof LinkError) {
          const titles = { denied: 'Request denied', expired: 'Request expired', wrong_identity: 'Do not use this link', bad_device: 'Do not use this link', bad_wrap: 'Linking failed', no_identity: 'Cannot link this browser' };
          fail(titles[error.code] ?? 'Linking failed', error.message);
        } else if (error instanceof ApiError) {
          fail('Linking failed', error.code === 'rate_limited' ? 'Too many link requests are waiting. Deny some on your other device, or wait ten minutes.' : `The server refused: ${error.detail || error.code}`);
        } else {
          fail('Linking failed', 'Something went wrong while linking. Nothing was stored.');
        }
      }
    })();
  });
}
