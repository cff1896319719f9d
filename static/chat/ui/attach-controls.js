/**
 * Choosing files to send in the composer: the attach button (a hidden file input), files
 * dropped anywhere on the conversation pane, and images pasted into the message box. The
 * chosen files wait as chips above the box until Send (the text then is the caption of
 * the first). A file over 100 MiB is refused at once with a plain sentence, before any
 * byte of it is read.
 * @module ui/attach-controls
 */

import { filesOf, formatSize, pastedName, refuseToSend } from '../file-kinds.js';
import { h, replace } from './dom.js';
import { icon } from './icons.js';

export class AttachControls {
  /**
   * @param {object} options
   * @param {HTMLElement} options.dropTarget where files may be dropped (the pane)
   * @param {HTMLTextAreaElement} options.textarea where images may be pasted
   * @param {() => void} options.onChange the staged files changed (the Send button's state)
   * @param {AbortSignal} options.signal removes the drop target's listeners (the pane outlives these controls)
   */
  constructor({ dropTarget, textarea, onChange, signal }) {
    this.onChange = onChange;
    /** @type {Array<{file: Blob, name: string}>} */
    this.staged = [];
    this.input = h('input', { type: 'file', multiple: true, id: 'attach-input', hidden: true });
    this.input.addEventListener('change', () => {
      this.add([...this.input.files]);
      this.input.value = '';
    });
    this.button = h('button.icon-button.attach', { type: 'button', 'aria-label': 'Attach files', title: 'Attach files', onclick: () => this.input.click() }, icon('paperclip'));
    this.tray = h('div.attach-tray', { 'aria-live': 'polite' });
    this.dropHint = h('div.drop-hint', { 'aria-hidden': 'true' }, icon('paperclip'), h('span', {}, 'Drop files to send them, encrypted'));
    let depth = 0;
    const dragging = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    dropTarget.addEventListener('dragenter', (e) => {
      if (!dragging(e) || this.button.disabled) return;
      depth += 1;
      dropTarget.classList.add('dropping');
    }, { signal });
    dropTarget.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dropTarget.classList.remove('dropping');
    }, { signal });
    dropTarget.addEventListener('dragover', (e) => {
      if (dragging(e) && !this.button.disabled) e.preventDefault();
    }, { signal });
    dropTarget.addEventListener('drop', (e) => {
      depth = 0;
      dropTarget.classList.remove('dropping');
      if (!dragging(e) || this.button.disabled) return;
      e.preventDefault();
      this.add(filesOf(e.dataTransfer));
    }, { signal });
    textarea.addEventListener('paste', (e) => {
      const images = filesOf(e.clipboardData, { imagesOnly: true });
      if (!images.length || this.button.disabled) return;
      e.preventDefault();
      this.add(images.map((file) => ({ file, name: pastedName(file) })));
    });
    this.render();
  }

  /** Stage files (File, or `{file, name}`); those over 100 MiB are refused with a sentence. */
  add(files) {
    const refusals = [];
    for (const entry of files) {
      const { file, name } = entry instanceof Blob ? { file: entry, name: entry.name || 'file' } : entry;
      const refusal = refuseToSend(file.size, name);
      if (refusal) refusals.push(refusal);
      else this.staged.push({ file, name });
    }
    this.error = refusals.join(' ') || null;
    this.render();
    this.onChange();
  }

  /** The staged files, emptied. */
  take() {
    const staged = this.staged;
    this.staged = [];
    this.error = null;
    this.render();
    this.onChange();
    return staged;
  }

  setDisabled(disabled) {
    this.button.disabled = disabled;
  }

  render() {
    replace(this.tray,
      this.error ? h('p.attach-error', { role: 'alert' }, this.error) : null,
      this.staged.map((entry, i) => h('span.chip.attach-chip', { dataset: { name: entry.name } },
        icon('file', 'icon-inline'),
        h('span.attach-name', {}, entry.name),
        h('span.att-sub', {}, formatSize(entry.file.size)),
        h('button.chip-remove', {
          type: 'button',
          'aria-label': `Remove ${entry.name}`,
          onclick: () => {
            this.staged.splice(i, 1);
            this.error = null;
            this.render();
            this.onChange();
          },
        }, icon('close', 'icon-inline')))));
    this.tray.hidden = !this.error && !this.staged.length;
  }
}
