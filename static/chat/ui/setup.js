/**
 * The screens before the chat, and the order they come in (`deviceFlow`):
 *
 * * a stored keystore: unlock it, then bring the device in line with the account
 *   (device.reconcile: a v1 keystore upgrades, §7.5; a device the account's identity
 *   does not know yet links; a revoked one starts over);
 * * no keystore, and an account with no identity and no device: set up the first
 *   device (makes the identity);
 * * no keystore on an account that has one: "Link this browser" (ui/link-screen.js)
 *   beside "Set up without another device" (a reset: a new identity, every other device
 *   signed out, contacts see a safety-number change), and importing a key file.
 *
 * Every screen resolves with {record, keys} (app keys) once the device is usable.
 * @module ui/setup
 */

import * as device from '../device.js';
import { ApiError } from '../api.js';
import { h } from './dom.js';
import { card, errorBox, show } from './card.js';
import { confirmDialog } from './dialogs.js';
import { passphraseField } from './passphrase-field.js';
import { linkScreen } from './link-screen.js';
import { deviceNameInput } from './device-name.js';
import { signedInLine } from './logout.js';

const SETUP_STEPS = [
  ['keys', 'Making your identity key and this device’s two key pairs'],
  ['identity', 'Publishing your identity key'],
  ['register', 'Registering this device with its certificate'],
  ['lock', 'Locking the keys with your passphrase'],
  ['check', 'Checking the locked keystore'],
];

export function progressPanel(steps = SETUP_STEPS, label = 'Device setup progress') {
  const items = new Map(steps.map(([key, text]) => [key, h('li', { dataset: { state: 'waiting' } }, h('span.step-icon', { 'aria-hidden': 'true' }), h('span', {}, text), h('span.step-time'))]));
  const bar = h('progress', { max: steps.length, value: 0, 'aria-label': label });
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
      const index = steps.findIndex(([key]) => key === name);
      bar.value = index >= 0 ? index : steps.length;
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

function refusal(error) {
  if (error instanceof ApiError) {
    if (error.code === 'identity_exists') return 'Your account got an identity on another device meanwhile. Reload the page and link this browser from that device.';
    return `The server refused: ${error.detail || error.code}`;
  }
  return null;
}

/**
 * Where a logged-in browser starts: unlock the stored keystore, or the screens for a
 * browser without one. Resolves {record, keys}.
 */
export async function deviceFlow(root, { me }) {
  const record = await device.storedRecord(me.id);
  if (!record) return noDeviceFlow(root, { me });
  // Bug 9: whether the account still lists this device needs no private key, so a
  // revoked (or unknown) device is told so before anyone types a passphrase. Offline:
  // unlock as before (afterUnlock checks again).
  const status = await device.deviceStatus(record).catch(() => 'unknown');
  if (status === 'revoked' || status === 'missing') return noDeviceFlow(root, { me, reason: GONE[status] });
  return unlockFlow(root, { me, record });
}

/** Why a browser with stored keys must link again or be set up anew. */
const GONE = {
  revoked: 'This browser was signed out (its device was revoked, or your account was reset). Link it again or set it up anew.',
  missing: 'This browser’s keys are not registered to your account. Link it or set it up anew.',
};

/**
 * Set up this browser: the account's first device (makes the identity), or with
 * `reset` a new identity for the account (`replace`: every other device is revoked).
 */
export function setupScreen(root, { me, reset = false, reason = null, back = null }) {
  return new Promise((resolve) => {
    let keysPromise = device.makeKeys();
    let identityPromise = device.makeIdentity();
    keysPromise.catch(() => {});
    identityPromise.catch(() => {});
    const name = deviceNameInput();
    const pass = passphraseField({ label: 'Passphrase' });
    const understand = h('input', { type: 'checkbox', id: 'understand', required: true });
    const errors = errorBox();
    const progress = progressPanel();
    // the heading says "browser" and so does the button; a reset's button is destructive
    const submit = h(`button.${reset ? 'danger' : 'primary'}`, { type: 'submit' }, reset ? 'Reset and set up this browser' : 'Set up this browser');
    const form = h('form.stack', { novalidate: true },
      h('label', { for: 'device-name' }, 'Device name'),
      name,
      h('p.hint', {}, 'Shown to you and your contacts, e.g. “Work laptop”.'),
      pass.el,
      h('label.check', { for: 'understand' }, understand, reset
        ? ' I understand: my other devices are signed out, my contacts see a new safety number, and old messages cannot be read here.'
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
      if (reset && !(await confirmDialog({
        title: 'Reset your account?',
        message: 'Every other device of yours is signed out now and its keys stop working. Your contacts will see that your safety number changed and must accept the new one before they can write to you.',
        confirm: 'Reset my account',
        danger: true,
      }))) return undefined;
      submit.disabled = true;
      form.setAttribute('aria-busy', 'true');
      try {
        const result = await device.setupDevice({
          me, name: name.value.trim(), passphrase: pass.value, keys: keysPromise, identity: identityPromise, replace: reset, onStep: (s) => progress.step(s),
        });
        pass.clear();
        keysPromise = identityPromise = null; // drop the extractable keys; the app holds its own
        resolve(result);
      } catch (error) {
        progress.fail();
        submit.disabled = false;
        form.removeAttribute('aria-busy');
        if (error instanceof ApiError && error.code === 'duplicate_key') {
          keysPromise = device.makeKeys();
          keysPromise.catch(() => {});
        }
        errors.show(refusal(error) ?? 'Setting up failed. Please try again.');
      }
      return undefined;
    });
    const intro = reset
      ? h('div.callout.callout-danger', { role: 'note' },
        h('strong', {}, 'This resets your account. '),
        'A new identity is made for you here. Every other device of yours is signed out and its keys stop working. Your contacts will see that your safety number changed, and must accept it before they can write to you. Messages sent before cannot be read on this browser.')
      : h('p.lead', {}, 'Your messages are end-to-end encrypted. This browser makes your identity key and its own device keys, locked with a passphrase of your choice. The server only ever sees public keys.');
    const alt = back
      ? h('p.alt', {}, h('button.link', { type: 'button', onclick: () => back().then(resolve) }, 'Back'))
      : h('p.alt', {}, 'Already set up elsewhere? ', h('button.link', { type: 'button', onclick: () => importScreen(root, { me }).then(resolve) }, 'Import a key file'));
    show(root, card(reset ? 'Set up without another device' : 'Set up this browser', reason && h('div.callout.callout-warn', { role: 'alert' }, reason), intro, form, alt, signedInLine(me)), name);
  });
}

/**
 * A browser without a usable keystore. An account with no identity and no device gets
 * the first-device setup; otherwise the choice between linking and a reset.
 */
export async function noDeviceFlow(root, { me, reason = null }) {
  let state;
  for (;;) {
    try {
      state = await device.accountState(me);
      break;
    } catch {
      await new Promise((resolve) => {
        show(root, card('Cannot reach the server', h('p', {}, 'Checking your account failed. Check the connection and try again.'),
          h('button.primary', { type: 'button', onclick: resolve }, 'Try again')));
      });
    }
  }
  const { listing, activeDevices } = state;
  if (!listing.current && !listing.invalid && !activeDevices.length) return setupScreen(root, { me, reason });
  return chooserScreen(root, { me, reason, listing, activeDevices });
}

function chooserScreen(root, { me, reason, listing, activeDevices }) {
  return new Promise((resolve) => {
    const again = () => noDeviceFlow(root, { me });
    const canLink = Boolean(listing.current);
    const link = h('button.primary.big', { type: 'button', id: 'link-browser', disabled: !canLink, onclick: () => linkScreen(root, { me, back: again }).then(resolve) }, 'Link this browser');
    const reset = h('button.secondary', { type: 'button', id: 'setup-without', onclick: () => setupScreen(root, { me, reset: Boolean(listing.current), back: again }).then(resolve) }, 'Set up without another device');
    const linkText = canLink
      ? 'Open the chat on a device where you are signed in, then choose “Link this browser” here. You compare a code on both screens; this browser gets your identity, the people you trust, and your message history.'
      : listing.invalid
        ? 'The server lists an identity for your account that fails its checks, so this browser cannot be linked to it.'
        : 'Your account has devices from before identity keys. Unlock one of them first (it upgrades itself), then link this browser from it.';
    show(root, card('Add this browser to your account',
      reason && h('div.callout.callout-warn', { role: 'alert' }, reason),
      h('p.lead', {}, activeDevices.length > 1 ? `You already use the chat on ${activeDevices.length} other devices.` : activeDevices.length ? 'You already use the chat on another device.' : 'No other device of yours is signed in to the chat.'),
      h('section.choice', { 'aria-labelledby': 'choice-link' },
        h('h2', { id: 'choice-link' }, 'Link from another device'),
        h('p', {}, linkText),
        link),
      h('section.choice.choice-danger', { 'aria-labelledby': 'choice-reset' },
        h('h2', { id: 'choice-reset' }, 'No other device at hand?'),
        h('p', {}, canLink
          ? 'Setting up without another device resets your account: every other device is signed out, and your contacts will see that your safety number changed.'
          : 'Setting up here makes a new identity. Your contacts will see that your safety number changed.'),
        reset),
      h('p.alt', {}, h('button.link', { type: 'button', onclick: () => importScreen(root, { me }).then(resolve) }, 'Import a key file')),
      signedInLine(me)),
    canLink ? link : reset);
  });
}

/**
 * After unlocking or importing (`keys` extractable): reconcile with the account, then
 * go on as the outcome says. Resolves {record, keys}.
 */
async function afterUnlock(root, { me, record, keys, passphrase }) {
  show(root, card('Checking this device', h('p.lead', { role: 'status' }, 'Checking this device with your account…')));
  let outcome;
  try {
    outcome = await device.reconcile({ me, record, keys, passphrase });
  } catch (error) {
    if (error instanceof ApiError && error.status !== 0) {
      return noDeviceFlow(root, { me, reason: `This device could not be brought up to date (${error.detail || error.code}).` });
    }
    return new Promise((resolve) => {
      show(root, card('Cannot reach the server', h('p', {}, 'Checking this device failed. Check the connection and try again.'),
        h('button.primary', { type: 'button', onclick: () => afterUnlock(root, { me, record, keys, passphrase }).then(resolve) }, 'Try again')));
    });
  }
  if (outcome.state === 'ready') return { record: outcome.record, keys: outcome.keys };
  if (outcome.state === 'link') {
    return linkScreen(root, {
      me,
      keys: outcome.keys,
      passphrase,
      reason: 'Your account has an identity key that this browser does not hold yet. Link it from a device that has it; this browser keeps its keys and its history.',
      back: () => noDeviceFlow(root, { me }),
    });
  }
  return noDeviceFlow(root, { me, reason: GONE[outcome.status === 'revoked' ? 'revoked' : 'missing'] });
}

/** Ask for the passphrase of the stored keystore; resolves {record, keys}. */
export function unlockFlow(root, { me, record }) {
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
      let keys;
      const passphrase = input.value;
      try {
        keys = await device.unlockExtractable(record, passphrase);
      } catch (error) {
        submit.disabled = false;
        submit.textContent = 'Unlock';
        input.select();
        errors.show(error instanceof device.WrongPassphrase
          ? 'Wrong passphrase. Nothing was changed; try again.'
          : 'The stored keystore could not be read. You can import a key file or set this browser up again.');
        return undefined;
      }
      input.value = '';
      resolve(afterUnlock(root, { me, record, keys, passphrase }));
      return undefined;
    });
    show(root, card('Unlock this device',
      h('p.lead', {}, 'Enter the passphrase of this browser’s keys (not your login password).'),
      form,
      h('p.alt', {},
        h('button.link', { type: 'button', onclick: () => noDeviceFlow(root, { me, reason: 'Without the passphrase this browser’s keys cannot be used. Link it again from another device, or set it up anew.' }).then(resolve) }, 'Lost your passphrase?'),
        ' · ',
        h('button.link', { type: 'button', onclick: () => importScreen(root, { me, record }).then(resolve) }, 'Import a key file')),
      signedInLine(me),
    ), input);
  });
}

/** Import a key file (v1 or v2) and its passphrase, then reconcile. */
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
      const passphrase = input.value;
      try {
        const text = await file.files[0].text();
        const result = await device.importKeyFile({ me, text, passphrase });
        input.value = '';
        resolve(afterUnlock(root, { me, record: result.record, keys: result.keys, passphrase }));
      } catch (error) {
        submit.disabled = false;
        if (error instanceof device.WrongPassphrase) errors.show('Wrong passphrase for this key file. Nothing was changed.');
        else if (error instanceof device.ImportError) errors.show(error.message);
        else if (error instanceof device.KeystoreError) errors.show('This key file is damaged or not supported.');
        else errors.show('Importing failed. Please try again.');
      }
      return undefined;
    });
    const back = h('button.link', { type: 'button', onclick: () => (record ? unlockFlow(root, { me, record }) : noDeviceFlow(root, { me })).then(resolve) }, 'Back');
    show(root, card('Import a key file',
      h('p.lead', {}, 'Use keys exported from another browser or from the Python client. The file stays in this browser.'),
      form, h('p.alt', {}, back), signedInLine(me)), file);
  });
}
