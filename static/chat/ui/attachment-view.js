/**
 * What a file message shows (PROTOCOL §10.2), an upload in progress, and the image
 * viewer. Everything named here comes from the sender's payload and goes in as text.
 *
 * * An image (PNG, JPEG, GIF or WebP by its `mime`) shows its thumbnail from the payload
 *   at once (a `data:` URL typed by the thumbnail's own bytes); one without a thumbnail
 *   up to 10 MiB downloads by itself and shows inline. A click opens the viewer: the
 *   full image, fetched, decrypted and checked, as a `blob:` URL revoked on close.
 * * Any other file: its cleaned name, size and type, and Download (progress, Cancel),
 *   saved as an `application/octet-stream` download, never opened in this origin.
 * * A refused file (a failed check, now or earlier in this page) says so plainly and
 *   shows no thumbnail and no way to its bytes.
 *
 * A file's part of the bubble updates itself from `Downloads` (so a re-render of the
 * message keeps its progress).
 * @module ui/attachment-view
 */

import { cleanFileName } from '../attachments.js';
import { autoDownloads, describeType, formatSize, isInlineImage, refusalText, sniffImageType } from '../file-kinds.js';
import { b64decode } from '../protocol.js';
import { h, replace, toast } from './dom.js';
import { icon } from './icons.js';

const PHASE_TEXT = { reading: 'Preparing', encrypting: 'Encrypting', uploading: 'Uploading', ready: 'Uploaded, waiting' };

/** The `data:` URL of a payload's thumbnail when its bytes are a shown image type, else null. */
export function thumbUrl(file) {
  if (!file?.thumb) return null;
  try {
    const type = sniffImageType(b64decode(file.thumb).subarray(0, 16));
    return type ? `data:${type};base64,${file.thumb}` : null;
  } catch {
    return null;
  }
}

function progressBar(done, total, label) {
  const bar = h('progress.att-progress', { max: String(Math.max(1, total)), value: String(Math.min(done, total)), 'aria-label': label });
  return bar;
}

function percent(done, total) {
  return total ? Math.floor((done / total) * 100) : 0;
}

/** An image element sized by the payload's dimensions (scaled by CSS). */
function imageEl(src, file, alt) {
  const img = h('img.att-img', { src, alt, decoding: 'async' });
  if (file.width && file.height) {
    img.width = file.width;
    img.height = file.height;
  }
  return img;
}

/**
 * The attachment part of a file message's bubble: `item` has `file` (checked) or
 * `fileRefused`. `downloads` is the app's Downloads.
 */
export function attachmentNode(item, downloads) {
  const el = h('div.attachment');
  if (item.fileRefused || !item.file) {
    el.classList.add('att-refused');
    replace(el, refusedNote(item.fileRefused ?? 'bad_meta'));
    return el;
  }
  const file = item.file;
  let frame = 0;
  let seen = false;
  const render = () => {
    frame = 0;
    renderFile(el, file, downloads, item.text);
  };
  const stop = downloads.watch(file.blob, () => {
    if (el.isConnected) seen = true;
    else if (seen) {
      stop();
      return;
    }
    if (!frame) frame = requestAnimationFrame(render);
  });
  render();
  if (autoDownloads(file) && downloads.state(file.blob).state === 'idle') downloads.showInline(file);
  return el;
}

function refusedNote(code) {
  return h('p.att-refused-text', { role: 'note', dataset: { code } }, icon('alert', 'icon-inline'), ' ', refusalText(code));
}

function renderFile(el, file, downloads, caption) {
  const state = downloads.state(file.blob);
  el.dataset.state = state.state;
  if (state.state === 'refused') {
    el.className = 'attachment att-refused';
    replace(el, refusedNote(state.code));
    return;
  }
  const name = cleanFileName(file.name);
  if (isInlineImage(file) && !state.notImage) {
    el.className = 'attachment att-image-wrap';
    const src = state.url ?? thumbUrl(file);
    const label = `Open image ${name}`;
    const open = () => openViewer(file, downloads, { caption });
    const picture = src
      ? h('button.att-image', { type: 'button', 'aria-label': label, title: name, onclick: open }, imageEl(src, file, name))
      : h('button.att-image.att-placeholder', { type: 'button', 'aria-label': label, onclick: open },
        icon('image'), h('span', {}, `Photo · ${formatSize(file.size)}`));
    replace(el, picture,
      state.state === 'loading' && h('div.att-bar', {}, progressBar(state.done, state.total, `Downloading ${name}`),
        h('button.link.small', { type: 'button', onclick: () => downloads.cancel(file.blob) }, 'Cancel')),
      state.state === 'failed' && h('p.att-error', {}, state.error, ' ',
        h('button.link.small', { type: 'button', onclick: () => (autoDownloads(file) ? downloads.showInline(file) : open()) }, 'Try again')));
    return;
  }
  el.className = 'attachment att-file';
  const loading = state.state === 'loading';
  const save = () => downloads.save(file);
  replace(el,
    h('span.att-file-icon', { 'aria-hidden': 'true' }, icon('file')),
    h('div.att-file-main', {},
      h('span.att-name', { title: name }, name),
      h('span.att-sub', {}, `${formatSize(file.size)} · ${describeType(file.mime)}`),
      state.notImage && h('span.att-sub', {}, 'Not an image this app shows; download it instead.'),
      loading && h('div.att-bar', {}, progressBar(state.done, state.total, `Downloading ${name}`), h('span.att-pct', {}, `${percent(state.done, state.total)}%`)),
      state.state === 'failed' && h('span.att-error', {}, state.error),
      state.state === 'done' && h('span.att-sub.att-saved', {}, 'Decrypted, checked and saved')),
    loading
      ? h('button.secondary.small.att-action', { type: 'button', onclick: () => downloads.cancel(file.blob) }, 'Cancel')
      : h('button.secondary.small.att-action', { type: 'button', onclick: save, 'aria-label': `Download ${name}`, title: `Download ${name}` }, icon('download', 'icon-inline'), h('span.att-action-label', {}, ' Download')));
}

/**
 * The viewer of a full image: a modal <dialog> showing the thumbnail while the image is
 * fetched and checked, then the image from a `blob:` URL that is revoked when it closes.
 * A refused image closes it (the message then says it was refused).
 */
export function openViewer(file, downloads, { caption = '' } = {}) {
  const name = cleanFileName(file.name);
  const thumb = thumbUrl(file);
  const stage = h('div.viewer-stage', {}, thumb ? imageEl(thumb, file, name) : null);
  const status = h('div.viewer-status', { role: 'status' });
  let url = null;
  const close = () => dialog.close();
  const dialog = h('dialog.viewer', { 'aria-label': name },
    h('div.viewer-head', {},
      h('span.viewer-name', { title: name }, name, h('span.att-sub', {}, ` · ${formatSize(file.size)}`)),
      h('button.secondary.small', { type: 'button', onclick: () => downloads.save(file), 'aria-label': `Download ${name}` }, icon('download', 'icon-inline'), ' Save'),
      h('button.icon-button', { type: 'button', 'aria-label': 'Close', onclick: close }, icon('close'))),
    stage, status,
    caption ? h('p.viewer-caption', {}, caption) : null);
  dialog.addEventListener('close', () => {
    stop();
    if (url) URL.revokeObjectURL(url);
    url = null;
    if (downloads.state(file.blob).state === 'loading') downloads.cancel(file.blob);
    dialog.remove();
  });
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) close();
  });
  const showProgress = () => {
    const state = downloads.state(file.blob);
    if (state.state === 'loading') {
      replace(status, progressBar(state.done, state.total, `Downloading ${name}`), ` ${percent(state.done, state.total)}%`);
    } else replace(status);
  };
  const stop = downloads.watch(file.blob, showProgress);
  document.body.append(dialog);
  dialog.showModal();
  showProgress();
  downloads.imageUrl(file).then((made) => {
    if (!dialog.open) {
      if (made) URL.revokeObjectURL(made);
      return;
    }
    if (!made) {
      const state = downloads.state(file.blob);
      if (state.state === 'refused') {
        close();
        toast('This file was refused: it was changed or damaged on the way.', 'error');
      } else replace(status, state.notImage ? 'This is not an image this app shows.' : state.error ?? 'Cancelled.');
      return;
    }
    url = made;
    replace(stage, h('img.viewer-img', { src: url, alt: name, dataset: { full: 'true' } }));
  });
  return dialog;
}

/** An upload not yet handed to the sender: name, size, phase with progress, Cancel; or why it failed. */
export function uploadNode(upload, uploads) {
  const failed = upload.phase === 'failed';
  const label = `${PHASE_TEXT[upload.phase] ?? 'Uploading'} ${upload.name}`;
  return h(`div.msg.own.pending.upload${failed ? '.send-failed' : ''}`, { dataset: { state: failed ? 'failed' : 'uploading', phase: upload.phase, uploadId: upload.id } },
    h('div.bubble.bubble-file', {},
      h('div.attachment.att-file', {},
        h('span.att-file-icon', { 'aria-hidden': 'true' }, icon('file')),
        h('div.att-file-main', {},
          h('span.att-name', { title: upload.name }, upload.name),
          h('span.att-sub', {}, formatSize(upload.size)),
          failed
            ? h('span.att-error', {}, upload.error)
            : h('div.att-bar', {}, progressBar(upload.done, upload.total, label),
              h('span.att-pct', {}, `${PHASE_TEXT[upload.phase] ?? ''} ${percent(upload.done, upload.total)}%`)))),
      upload.caption ? h('p.msg-text', {}, upload.caption) : null),
    h('div.pending-actions', {},
      failed && h('button.link.small', { type: 'button', onclick: () => uploads.retry(upload.id) }, 'Retry'),
      h('button.link.small', { type: 'button', onclick: () => uploads.cancel(upload.id) }, failed ? 'Discard' : 'Cancel')));
}

/** The progress of an upload node, updated in place (no rebuild per progress event). */
export function updateUploadNode(node, upload) {
  const bar = node.querySelector('.att-progress');
  if (bar) {
    bar.max = Math.max(1, upload.total);
    bar.value = Math.min(upload.done, upload.total);
  }
  const pct = node.querySelector('.att-pct');
  if (pct) pct.textContent = `${PHASE_TEXT[upload.phase] ?? ''} ${percent(upload.done, upload.total)}%`;
}
