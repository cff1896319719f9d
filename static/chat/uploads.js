/**
 * Sending a file (PROTOCOL §10.2): refused over 100 MiB before anything is read; the
 * thumbnail of an image (thumbs.js); the file read once into memory, its SHA-256 taken
 * (WebCrypto has no incremental hash) and encrypted from that buffer chunk by chunk, 4 MiB
 * (64 chunks, encrypted in parallel) at a time, into one buffer of the blob's exact size
 * (no Blob: making one copies every byte to the browser's blob storage, which measured
 * slower than the encryption itself); the plaintext is let go before the upload, so two
 * whole copies at most; the blob uploaded with an
 * XHR (progress from `upload.onprogress`, cancel = `abort()`); then the `file` message
 * handed to the sender (`send(conv, payload, blobs)`, in the order the files were
 * chosen), which seals it, keeps it in the
 * outbox and sends it with `blobs: [id]` like any message.
 *
 * Each upload is shown in its conversation until it is handed over, with its phase
 * (`reading`, `encrypting`, `uploading`), progress and Cancel; a failed one says why, with
 * Retry and Discard. Uploads live in memory: a reload forgets those not handed over (the
 * server purges unnamed blobs after 24 h).
 *
 * Events: `change` (detail: conversation id).
 * @module uploads
 */

import { csrfToken } from './api.js';
import { blobSize, cleanFileName, FileEncryptor, filePayload, fileSha256, INLINE_IMAGE_TYPES } from './attachments.js';
import { refuseToSend, sendableMime } from './file-kinds.js';
import { b64encode } from './protocol.js';
import { makeThumbnail } from './thumbs.js';

/** Bytes encrypted per step: 64 chunks, encrypted in parallel. */
const STEP = 64 * 65536;

const UPLOAD_ERRORS = {
  too_large: 'The server refused the file as too large.',
  over_quota: 'Your storage on the server is full: delete some files or ask the administrator.',
  rate_limited: 'Too many uploads: try again later.',
  network: 'The upload was cut off: check the connection and try again.',
};

/** An upload the person cancelled. */
export class UploadCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'UploadCancelled';
  }
}

/**
 * POST the ciphertext (bytes or a Blob) to `/api/blobs/` with an XHR; resolves the blob id. `onProgress(sent,
 * total)`; `signal` aborts (rejects UploadCancelled). Errors reject with `{code, message}`.
 */
export function uploadBlob(body, { onProgress = () => {}, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/blobs/');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-CSRFToken', csrfToken());
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.byteLength ?? body.size);
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status === 201 && typeof data?.blob?.id === 'string') resolve(data.blob.id);
      else {
        const code = data?.error?.code ?? `http_${xhr.status}`;
        reject(Object.assign(new Error(UPLOAD_ERRORS[code] ?? data?.error?.detail ?? 'The server refused the upload.'), { code }));
      }
    };
    xhr.onerror = () => reject(Object.assign(new Error(UPLOAD_ERRORS.network), { code: 'network' }));
    xhr.onabort = () => reject(new UploadCancelled());
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    if (signal?.aborted) {
      reject(new UploadCancelled());
      return;
    }
    xhr.send(body);
  });
}

/**
 * Encrypt a file's bytes (a Uint8Array, or a Blob, read whole) chunk by chunk; resolves
 * `{body: Uint8Array, key, prefix, size}` (`body` is the blob, `blobSize(size)` bytes).
 * `onProgress(done, total)` after each step; `signal` stops between steps.
 */
export async function encryptFile(file, { onProgress = () => {}, signal } = {}) {
  const bytes = file instanceof Blob ? new Uint8Array(await file.arrayBuffer()) : file;
  const size = bytes.length;
  const encryptor = new FileEncryptor(size);
  const body = new Uint8Array(blobSize(size));
  let written = 0;
  for (let at = 0; at < size; at += STEP) {
    if (signal?.aborted) throw new UploadCancelled();
    const out = await encryptor.update(bytes.subarray(at, at + STEP));
    body.set(out, written);
    written += out.length;
    onProgress(Math.min(size, at + STEP), size);
  }
  const rest = await encryptor.finish();
  body.set(rest, written);
  if (written + rest.length !== body.length) throw new Error('the blob is not the size §10.2 gives');
  return { body, key: encryptor.key, prefix: encryptor.prefix, size };
}

/** The `file` object of §10.2 for an uploaded blob. */
export function buildFileMeta({ blob, key, prefix, size, sha256, name, mime, width, height, thumb }) {
  const meta = { blob, key: b64encode(key), prefix: b64encode(prefix), size, sha256, name, mime };
  if (width && height) Object.assign(meta, { width, height });
  if (thumb?.length) meta.thumb = b64encode(thumb);
  return meta;
}

let nextId = 1;

export class Uploads extends EventTarget {
  /** @param {{send: (conv: object, payload: object, blobs: string[]) => void}} deps */
  constructor({ send }) {
    super();
    this.send = send;
    /** @type {Map<string, object>} */
    this.items = new Map();
  }

  /** The uploads of a conversation, oldest first. */
  inConversation(conversationId) {
    return [...this.items.values()].filter((u) => u.conversation === conversationId);
  }

  /**
   * Start sending `file` (a File or Blob; `name` for a Blob without one) with an optional
   * caption. Throws a plain Error, before reading anything, for a file over 100 MiB.
   */
  start(conv, file, { caption = '', name = null } = {}) {
    const shownName = cleanFileName(name ?? file.name ?? 'file');
    const refusal = refuseToSend(file.size, shownName);
    if (refusal) throw new Error(refusal);
    const upload = {
      id: `u${nextId++}`,
      conversation: conv.id,
      conv,
      file,
      name: shownName,
      mime: sendableMime(file.type),
      size: file.size,
      caption,
      phase: 'reading',
      done: 0,
      total: file.size,
      error: null,
      controller: null,
    };
    this.items.set(upload.id, upload);
    this.run(upload);
    return upload;
  }

  async run(upload) {
    upload.controller = new AbortController();
    const { signal } = upload.controller;
    upload.error = null;
    try {
      this.phase(upload, 'reading', 0, upload.size);
      const image = INLINE_IMAGE_TYPES.has(upload.mime) ? await makeThumbnail(upload.file) : null;
      const { sealed, sha256 } = await this.seal(upload, signal); // the plaintext stays in there
      this.phase(upload, 'uploading', 0, sealed.body.byteLength);
      const blob = await uploadBlob(sealed.body, { signal, onProgress: (done, total) => this.progress(upload, done, total) });
      sealed.body = null;
      const meta = buildFileMeta({ ...sealed, blob, sha256, name: upload.name, mime: upload.mime, width: image?.width, height: image?.height, thumb: image?.thumb });
      upload.phase = 'ready';
      upload.ready = { payload: filePayload(meta, { text: upload.caption || null }), blobs: [blob] };
      this.handOver(upload.conversation);
    } catch (error) {
      if (error instanceof UploadCancelled || signal.aborted) {
        this.items.delete(upload.id);
      } else {
        upload.phase = 'failed';
        upload.error = error?.code ? error.message : 'Could not encrypt or upload this file.';
      }
      this.handOver(upload.conversation);
    }
  }

  /** Read the file once, hash it and encrypt it: `{sealed, sha256}`. */
  async seal(upload, signal) {
    const bytes = new Uint8Array(await upload.file.arrayBuffer());
    const sha256 = await fileSha256(bytes);
    if (signal.aborted) throw new UploadCancelled();
    this.phase(upload, 'encrypting', 0, upload.size);
    const sealed = await encryptFile(bytes, { signal, onProgress: (done, total) => this.progress(upload, done, total) });
    return { sealed, sha256 };
  }

  /**
   * Hand the conversation's uploaded files to the sender in the order they were chosen:
   * one that is ready waits for those before it (a failed one does not hold the rest).
   */
  handOver(conversationId) {
    for (const upload of this.inConversation(conversationId)) {
      if (upload.phase === 'failed') continue;
      if (upload.phase !== 'ready') break;
      this.items.delete(upload.id);
      this.send(upload.conv, upload.ready.payload, upload.ready.blobs);
    }
    this.dispatchEvent(new CustomEvent('change', { detail: conversationId }));
  }

  phase(upload, phase, done, total) {
    Object.assign(upload, { phase, done, total });
    this.changed(upload);
  }

  progress(upload, done, total) {
    upload.done = done;
    upload.total = total;
    this.changed(upload);
  }

  /** Stop an upload (while encrypting or uploading); it disappears. */
  cancel(id) {
    const upload = this.items.get(id);
    if (!upload) return;
    upload.controller?.abort();
    if (upload.phase === 'failed') {
      this.items.delete(id);
      this.handOver(upload.conversation);
    }
  }

  /** Try a failed upload again. */
  retry(id) {
    const upload = this.items.get(id);
    if (upload?.phase === 'failed') this.run(upload);
  }

  changed(upload) {
    this.dispatchEvent(new CustomEvent('change', { detail: upload.conversation }));
  }
}
