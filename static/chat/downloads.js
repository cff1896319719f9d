/**
 * Receiving a file (PROTOCOL §10.2): the blob is fetched (`GET /api/blobs/<id>/`) and
 * read as a stream, decrypted and checked chunk by chunk as it arrives (attachments.js
 * FileDecryptor: every tag, the last flag, the padding, the length; the plaintext goes
 * into one buffer of `size` bytes), then hashed whole against the payload's `sha256`
 * (`finish()`; WebCrypto has no incremental hash). Only a file that passed every check is
 * ever handed on; any failure is a *refusal*, kept per blob for the page's life, and the
 * views then offer neither bytes nor thumbnail.
 *
 * What is handed on: a download saved through `<a download>` of an
 * `application/octet-stream` Blob under the cleaned name (never opened in this origin);
 * an image as a `blob:` URL whose type is what its bytes are (PNG, JPEG, GIF or WebP,
 * sniffed; anything else is offered as a download). Inline images (auto-downloaded, no
 * thumbnail) keep their URL while shown (the newest 40); the viewer's URL is revoked on
 * close by its caller.
 *
 * Events: `change` (detail: blob id). `watch(blobId, fn)` calls fn on each.
 * @module downloads
 */

import { api, ApiError } from './api.js';
import { blobSize, cleanFileName, FileDecryptor, FileRefused } from './attachments.js';
import { sniffImageType } from './file-kinds.js';

/** Bytes gathered from the stream before each decrypt step (64 chunks with tags, decrypted in parallel). */
const DECRYPT_STEP = 64 * (65536 + 16);
const INLINE_KEPT = 40;

function concat(parts, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Fetch, decrypt and check the blob of a `file` object; resolves the plaintext as a Blob
 * (no type). Rejects FileRefused when a check fails, ApiError when the server does not
 * give it, AbortError when `signal` aborts. `onProgress(received, total)`.
 */
export async function fetchFile(file, { signal, onProgress = () => {} } = {}) {
  const decryptor = new FileDecryptor(file);
  const response = await api.blob(file.blob, { signal });
  const total = blobSize(file.size);
  const reader = response.body.getReader();
  let batch = [];
  let batchBytes = 0;
  let received = 0;
  // one decrypt step runs while the next 4 MiB are read; flush() waits for the one before
  let work = Promise.resolve();
  const flush = () => {
    const before = work;
    if (batchBytes) {
      const data = concat(batch, batchBytes);
      work = before.then(() => decryptor.update(data));
      work.catch(() => {}); // awaited by the next flush or at the end; never unhandled
      batch = [];
      batchBytes = 0;
    }
    return before;
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.length;
    if (received > total) {
      reader.cancel().catch(() => {});
      throw new FileRefused('bad_length', 'longer than its size says');
    }
    batch.push(value);
    batchBytes += value.length;
    if (batchBytes >= DECRYPT_STEP) await flush();
    onProgress(received, total);
  }
  flush();
  await work;
  return new Blob([await decryptor.finish()]);
}

/** Save bytes as a download under `name` (an application/octet-stream Blob, never opened here). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(new Blob([blob], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = cleanFileName(name);
  a.rel = 'noopener';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // the download has started from the URL by now; keep it a while for slow starts
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A Blob typed as the image its bytes are (PNG, JPEG, GIF, WebP), or null. */
export async function asImage(blob) {
  const type = sniffImageType(new Uint8Array(await blob.slice(0, 16).arrayBuffer()));
  return type ? new Blob([blob], { type }) : null;
}

/**
 * @typedef {object} DownloadState
 * @property {'idle'|'loading'|'done'|'refused'|'failed'} state
 * @property {number} done bytes received
 * @property {number} total bytes expected
 * @property {string|null} code the FileRefused code (refused) or the API error code (failed)
 * @property {string|null} error a sentence (failed)
 * @property {string|null} url the inline image's blob: URL (done, inline)
 * @property {boolean} notImage the bytes are not an image the app shows
 */

export class Downloads extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, DownloadState & {controller?: AbortController, promise?: Promise<Blob>}>} */
    this.states = new Map();
    this.inline = [];
  }

  /** The state of a blob's download (idle when never asked for). */
  state(blobId) {
    return this.states.get(blobId) ?? { state: 'idle', done: 0, total: 0, code: null, error: null, url: null, notImage: false };
  }

  /** Call `fn` on every change of `blobId`; returns the function that stops it. */
  watch(blobId, fn) {
    const listener = (event) => {
      if (event.detail === blobId) fn();
    };
    this.addEventListener('change', listener);
    return () => this.removeEventListener('change', listener);
  }

  set(blobId, patch) {
    const next = { ...this.state(blobId), ...patch };
    this.states.set(blobId, next);
    this.dispatchEvent(new CustomEvent('change', { detail: blobId }));
    return next;
  }

  /** Whether a blob was refused (then nothing of it is shown or offered). */
  refused(blobId) {
    return this.state(blobId).state === 'refused';
  }

  /**
   * The checked plaintext of `file` (one fetch at a time per blob). Resolves null when it
   * was refused, failed or cancelled (the state says which).
   */
  fetch(file) {
    const current = this.states.get(file.blob);
    if (current?.state === 'refused') return Promise.resolve(null);
    if (current?.promise) return current.promise;
    const controller = new AbortController();
    const promise = fetchFile(file, {
      signal: controller.signal,
      onProgress: (done, total) => this.set(file.blob, { done, total }),
    }).then(
      (blob) => {
        this.set(file.blob, { state: 'done', promise: null, controller: null });
        return blob;
      },
      (error) => {
        if (error instanceof FileRefused) this.set(file.blob, { state: 'refused', code: error.code, promise: null, controller: null });
        else if (error?.name === 'AbortError' || controller.signal.aborted) this.set(file.blob, { state: 'idle', done: 0, promise: null, controller: null });
        else {
          const gone = error instanceof ApiError && error.status === 404;
          this.set(file.blob, {
            state: 'failed',
            code: error?.code ?? 'error',
            error: gone ? 'This file is no longer on the server.' : 'The download failed; try again.',
            promise: null,
            controller: null,
          });
        }
        return null;
      },
    );
    this.set(file.blob, { state: 'loading', done: 0, total: blobSize(file.size), code: null, error: null, controller, promise });
    return promise;
  }

  /** Stop a download in progress. */
  cancel(blobId) {
    this.states.get(blobId)?.controller?.abort();
  }

  /** Fetch, check and save `file` under its cleaned name. */
  async save(file) {
    const blob = await this.fetch(file);
    if (blob) saveBlob(blob, file.name);
  }

  /** A fresh `blob:` URL of the checked image (the caller revokes it), or null. */
  async imageUrl(file) {
    const blob = await this.fetch(file);
    if (!blob) return null;
    const image = await asImage(blob);
    if (!image) {
      this.set(file.blob, { notImage: true });
      return null;
    }
    return URL.createObjectURL(image);
  }

  /** Download an inline image (no thumbnail, ≤ 10 MiB) once and keep its URL for the timeline. */
  async showInline(file) {
    const state = this.state(file.blob);
    if (state.url || !['idle', 'failed'].includes(state.state)) return;
    const url = await this.imageUrl(file);
    if (!url) return;
    this.inline.push(file.blob);
    while (this.inline.length > INLINE_KEPT) {
      const old = this.inline.shift();
      URL.revokeObjectURL(this.state(old).url);
      this.set(old, { url: null, state: 'idle' });
    }
    this.set(file.blob, { url });
  }
}
