/**
 * The screens before the chat: set up this browser as a device (with key-making
 * progress), unlock it, import a key file, reset a lost or revoked device.
 * Each screen resolves with {record, keys} once the device is usable.
 * @module ui/setup
 */

import * as device from '../device.js';
import { ApiError } from '../api.js';
import { h, replace } from './dom.js';
import { confirmDialog } from './dialogs.js';
import { passphraseField } from './passphrase-field.js';

function card(title, ...children) {
  return h('main.setup-card', { 'aria-labelledby': 'setup-title' }, h('h1', { id: 'setup-title' }, title), ...children);
}

function errorBox() {
  const box = h('div.form-error', { role: 'alert', hidden: true });
  return {
    el: box,
    show(message) {
      box.textContent = message;
      box.hidden = false;
    },
    clear() {
      box.hidden = true;
      box.textContent = '';
    },
  };
}

const STEPS = [
  ['keys', 'Making two RSA-3072 key pairs'],
  ['register', 'Registering this device with its proof'],
  ['lock', 'Locking the keys with your passphrase'],
  ['check', 'Checking the locked keystore'],
];

function progressPanel() {
  const items = new Map(STEPS.map(([key, text]) => [key, h('li', { dataset: { state: 'waiting' } }, h('span.step-icon', { 'aria-hidden': 'true' }), h('span', {}, text), h('span.step-time'))]));
  const bar = h('progress', { max: STEPS.length, value: 0, 'aria-label': 'Device setup progress' });
  const el = h('section.progress-panel', { 'aria-live': 'polite', hidden: true }, bar, h('ol.steps', {}, [...items.values()]));
  const started = {};
  let current = null;
  let ticker = null;
  const tick = () => {
    if (current) items.get(current).querySelector('.step-time').textContent = `${((performance.now() - started[current]) / 1000).toFixed(1)} s`;
  };
  return {
    el,
    step(name) {
      el.hidden = false;
      if (current && items.has(current)) {
        tick();
        items.get(current).dataset.state = 'done';
      }
      current = items.has(name) ? name : null;
      bar.value = STEPS.findIndex(([key]) => key === name) >= 0 ? STEPS.findIndex(([key]) => key === name) : STEPS.length;
      if (current) {
        started[current] = performance.now();
        items.get(current).dataset.state = 'active';
        clearInterval(ticker);
        ticker = setInterval(tick, 100);
      } else clearInterval(ticker);
    },
    fail() {
      clearInterval(ticker);
      if (current) items.get(current).dataset.state = 'failed';
    },
  };
}

/** Set up (or, with `oldRecord`, reset) this browser as a device. */
export function setupScreen(root, { me, oldRecord = null, reason = null }) {
  return new Promise((resolve) => {
    const resetting = Boolean(oldRecord);
    let keysPromise = device.makeKeys();
    keysPromise.catch(() => {});
    const name = h('input', { id: 'device-name', value: device.defaultDeviceName(), maxlength: 100, required: true, autocomplete: 'off' });
    const pass = passphraseField({ label: 'Passphrase' });
    const understand = h('input', { type: 'checkbox', id: 'understand', required: true });
    const errors = errorBox();
    const progress = progressPanel();
    const submit = h('button.primary', { type: 'submit' }, resetting ? 'Reset this device' : 'Set up this device');
    const form = h('form.stack', { novalidate: true },
      h('label', { for: 'device-name' }, 'Device name'),
      name,
      h('p.hint', {}, 'Shown to you and your contacts, e.g. “Work laptop”.'),
      pass.el,
      h('label.check', { for: 'understand' }, understand, resetting
        ? ' I understand that this device’s old keys are revoked and messages sent to them cannot be read here.'
        : ' I understand that a lost passphrase means unreadable history.'),
      errors.el,
      submit,
      progress.el,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.clear();
      const problem = !name.value.trim() ? 'Name this device.' : pass.check() ?? (!understand.checked ? 'Please confirm the warning above.' : null);
      if (problem) return errors.show(problem);
      submit.disabled = true;
      form.setAttribute('aria-busy', 'true');
      try {
        const run = resetting ? device.resetDevice : device.setupDevice;
        const result = await run({ me, oldRecord, name: name.value.trim(), passphrase: pass.value, keys: keysPromise, onStep: (s) => progress.step(s) });
        pass.clear();
        keysPromise = null; // drop the extractable keys; the app holds non-extractable ones
        resolve(result);
      } catch (error) {
        progress.fail();
        submit.disabled = false;
        form.removeAttribute('aria-busy');
        keysPromise = device.makeKeys();
        keysPromise.catch(() => {});
        errors.show(error instanceof ApiError ? `The server refused: ${error.detail}` : 'Setting up failed. Please try again.');
      }
      return undefined;
    });
    const intro = resetting
      ? h('div.callout.callout-danger', { role: 'note' },
        h('strong', {}, 'Resetting this device. '),
        'New keys are made and the old device is revoked. Messages that were encrypted for the old keys cannot be read on this device any more; your contacts will see that your devices changed.')
      : h('p.lead', {}, 'Your messages are end-to-end encrypted. This browser gets its own keys, made here and locked with a passphrase of your choice. The server only ever sees public keys.');
    const alt = resetting
      ? h('p.alt', {}, h('button.link', { type: 'button', onclick: () => unlockScreen(root, { me, record: oldRecord }).then(resolve) }, 'Cancel and go back to unlocking'))
      : h('p.alt', {}, 'Already set up elsewhere? ', h('button.link', { type: 'button', onclick: () => importScreen(root, { me }).then(resolve) }, 'Import a key file'));
    replace(root, card(resetting ? 'Reset this device' : 'Set up this browser', reason && h('div.callout.callout-warn', { role: 'alert' }, reason), intro, form, alt));
    name.focus();
  });
}

/** Ask for the passphrase; resolves {record, keys}. */
export function unlockScreen(root, { me, record }) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'unlock-passphrase', type: 'password', autocomplete: 'current-password', required: true });
    const errors = errorBox();
    const submit = h('button.primary', { type: 'submit' }, 'Unlock');
    const form = h('form.stack', { novalidate: true },
      h('label', { for: 'unlock-passphrase' }, 'Passphrase'), input, errors.el, submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.clear();
      if (!input.value) return errors.show('Enter your passphrase.');
      submit.disabled = true;
      submit.textContent = 'Unlocking…';
      try {
        const keys = await device.unlock(record, input.value);
        input.value = '';
        resolve({ record, keys });
      } catch (error) {
        submit.disabled = false;
        submit.textContent = 'Unlock';
        input.select();
        errors.show(error instanceof device.WrongPassphrase
          ? 'Wrong passphrase. Nothing was changed; try again.'
          : 'The stored keystore could not be read. You can import a key file or reset this device.');
      }
      return undefined;
    });
    replace(root, card('Unlock this device',
      h('p.lead', {}, `Signed in as ${me.username}. Enter the passphrase of this browser’s keys (not your login password).`),
      form,
      h('p.alt', {},
        h('button.link', { type: 'button', onclick: () => resetScreen(root, { me, record }).then(resolve) }, 'Lost your passphrase? Reset this device'),
        ' · ',
        h('button.link', { type: 'button', onclick: () => importScreen(root, { me, record }).then(resolve) }, 'Import a key file')),
    ));
    input.focus();
  });
}

/** The explicit warning before a reset, then the setup form. */
export function resetScreen(root, { me, record }) {
  return setupScreen(root, { me, oldRecord: record });
}

/** Import a key file and its passphrase. */
export function importScreen(root, { me, record = null }) {
  return new Promise((resolve) => {
    const file = h('input', { id: 'key-file', type: 'file', accept: '.json,application/json', required: true });
    const input = h('input', { id: 'import-passphrase', type: 'password', autocomplete: 'current-password', required: true });
    const errors = errorBox();
    const submit = h('button.primary', { type: 'submit' }, 'Import and unlock');
    const form = h('form.stack', { novalidate: true },
      h('label', { for: 'key-file' }, 'Key file'), file,
      h('label', { for: 'import-passphrase' }, 'Passphrase of the key file'), input,
      errors.el, submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.clear();
      if (!file.files?.length) return errors.show('Choose a key file.');
      if (!input.value) return errors.show('Enter the passphrase of the key file.');
      if (record && !(await confirmDialog({ title: 'Replace keys?', message: 'This browser already has keys for your account. Replace them with the imported key file?', confirm: 'Replace', danger: true }))) return undefined;
      submit.disabled = true;
      try {
        const text = await file.files[0].text();
        const result = await device.importKeyFile({ me, text, passphrase: input.value });
        input.value = '';
        resolve(result);
      } catch (error) {
        submit.disabled = false;
        if (error instanceof device.WrongPassphrase) errors.show('Wrong passphrase for this key file. Nothing was changed.');
        else if (error instanceof device.ImportError) errors.show(error.message);
        else if (error instanceof device.KeystoreError) errors.show('This key file is damaged or not supported.');
        else errors.show('Importing failed. Please try again.');
      }
      return undefined;
    });
    const back = h('button.link', { type: 'button', onclick: () => (record ? unlockScreen(root, { me, record }) : setupScreen(root, { me })).then(resolve) }, 'Back');
    replace(root, card('Import a key file',
      h('p.lead', {}, 'Use keys exported from another browser or from the Python client. The file stays in this browser.'),
      form, h('p.alt', {}, back)));
    file.focus();
  });
}
