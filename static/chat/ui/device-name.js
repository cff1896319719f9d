/**
 * The "Device name" field of the setup, reset and link screens. The name typed is kept
 * for this page's life, so going Back and choosing another way (link, or set up without
 * another device) does not lose it.
 * @module ui/device-name
 */

import { defaultDeviceName } from '../device.js';
import { h } from './dom.js';

let typed = null;

/** The name typed last on this page, or the browser's default ("Chrome on Linux"). */
export function deviceName() {
  return typed ?? defaultDeviceName();
}

/** The field's <input id="device-name">, which remembers what is typed into it. */
export function deviceNameInput() {
  const input = h('input', { id: 'device-name', value: deviceName(), maxlength: 100, required: true, autocomplete: 'off' });
  input.addEventListener('input', () => {
    typed = input.value;
  });
  return input;
}
