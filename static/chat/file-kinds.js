/**
 * Pure helpers for showing attachments (no DOM, no crypto; node-tested): what kind of
 * image some bytes are, sizes in words, the conversation list's preview of a message,
 * the plain sentence for a refused file, and which files may be sent.
 * @module file-kinds
 */

import { INLINE_IMAGE_TYPES, MAX_FILE_BYTES } from './attachments.js';

/** Images without a thumbnail up to this size download by themselves to show inline. */
export const AUTO_IMAGE_BYTES = 10 * 2 ** 20;

/** The `type/subtype` shape attachments.js accepts (lowercased here). */
const MIME_RE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

/**
 * The image type the bytes start with (PNG, JPEG, GIF or WebP), or null: what an <img>
 * is given, whatever the sender said.
 * @param {Uint8Array} bytes at least the first 12 bytes
 */
export function sniffImageType(bytes) {
  const b = bytes;
  const at = (i, ...values) => values.every((v, k) => b[i + k] === v);
  if (b.length >= 8 && at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (b.length >= 3 && at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (b.length >= 6 && (at(0, 0x47, 0x49, 0x46, 0x38, 0x37, 0x61) || at(0, 0x47, 0x49, 0x46, 0x38, 0x39, 0x61))) return 'image/gif';
  if (b.length >= 12 && at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  return null;
}

/** Whether a file's (sender-given) type is one shown inline: PNG, JPEG, GIF, WebP. */
export function isInlineImage(file) {
  return INLINE_IMAGE_TYPES.has(String(file?.mime ?? '').toLowerCase());
}

/** Whether an inline image without a thumbnail downloads by itself to be shown. */
export function autoDownloads(file) {
  return isInlineImage(file) && !file.thumb && file.size <= AUTO_IMAGE_BYTES;
}

/** "0 bytes", "1 byte", "950 bytes", "12.3 KB", "5.2 MB", "100 MB" (powers of 1,024). */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = value >= 100 ? Math.round(value).toString() : value.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${units[unit]}`;
}

/** A short, readable type for a mime type: "PDF", "PNG image", "ZIP", else the mime itself. */
export function describeType(mime) {
  const m = String(mime ?? '').toLowerCase();
  const known = {
    'application/pdf': 'PDF',
    'application/zip': 'ZIP archive',
    'text/plain': 'Text',
    'application/octet-stream': 'File',
    'image/png': 'PNG image',
    'image/jpeg': 'JPEG image',
    'image/gif': 'GIF image',
    'image/webp': 'WebP image',
  };
  return known[m] ?? m;
}

/** The mime type to send for a picked file: its own when well-formed, else application/octet-stream. */
export function sendableMime(type) {
  const m = String(type ?? '').trim().toLowerCase();
  return m.length <= 255 && MIME_RE.test(m) ? m : 'application/octet-stream';
}

/** Why a file may not be sent (a plain sentence), or null; checked before anything is encrypted. */
export function refuseToSend(size, name = 'This file') {
  if (size > MAX_FILE_BYTES) return `“${name}” is ${formatSize(size)}; files can be at most ${formatSize(MAX_FILE_BYTES)}.`;
  return null;
}

/**
 * The list's one-line preview of a shown message item: its text (first line), "📎 name"
 * for a file, "Photo" for an inline image (with its caption when it has one), or null
 * for what shows no text (flagged, refused, unsupported).
 */
export function previewOf(item) {
  if (!item || item.status !== 'ok') return null;
  if (item.fileRefused) return 'File refused';
  if (item.file) {
    const caption = firstLine(item.text);
    if (isInlineImage(item.file)) return caption ? `Photo: ${caption}` : 'Photo';
    return `📎 ${item.file.name}${caption ? `: ${caption}` : ''}`;
  }
  return typeof item.text === 'string' ? firstLine(item.text) : null;
}

function firstLine(text) {
  return String(text ?? '').split('\n', 1)[0].trim().slice(0, 200);
}

const REFUSAL_REASONS = {
  bad_length: 'its length is wrong',
  bad_chunk: 'a part of it failed its check',
  bad_last: 'its end was moved or cut',
  bad_padding: 'its padding was changed',
  bad_hash: 'its contents differ from what was sent',
  bad_meta: 'its description is malformed',
};

/** The plain sentence shown for a refused file (code of FileRefused). */
export function refusalText(code) {
  const reason = REFUSAL_REASONS[code] ?? 'it failed a check';
  return `This file was refused: it was changed or damaged on the way (${reason}).`;
}

/** The attachable files of a drop or paste (a DataTransfer); pasted images only from a paste. */
export function filesOf(transfer, { imagesOnly = false } = {}) {
  const files = [...(transfer?.files ?? [])];
  return imagesOnly ? files.filter((f) => String(f.type).startsWith('image/')) : files;
}

/** A name for a pasted image without one ("image.png" from the clipboard): "Pasted image.png". */
export function pastedName(file) {
  const ext = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' }[file.type] ?? 'bin';
  return file.name && file.name !== `image.${ext}` ? file.name : `Pasted image.${ext}`;
}
