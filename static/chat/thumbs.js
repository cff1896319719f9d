/**
 * Thumbnails made in the browser for the `file` payload (plan: JPEG, longest side at
 * most 320 px, at most 16 KiB; `width`/`height` of the original): the image is decoded
 * with createImageBitmap (an image decoder, never a document), drawn on white on an
 * OffscreenCanvas, and encoded at falling qualities, then smaller, until it fits.
 * @module thumbs
 */

import { THUMB_MAX_BYTES } from './attachments.js';

const SIDES = [320, 240, 160];
const QUALITIES = [0.8, 0.65, 0.5, 0.35];

/**
 * `{thumb: Uint8Array|null, width, height}` of an image file, or null when it does not
 * decode as an image (it is then sent without either).
 * @param {Blob} file
 */
export async function makeThumbnail(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return null;
  }
  const { width, height } = bitmap;
  try {
    if (!(width >= 1 && height >= 1 && width <= 65535 && height <= 65535)) return null;
    for (const side of SIDES) {
      const scale = Math.min(1, side / Math.max(width, height));
      const w = Math.max(1, Math.round(width * scale));
      const h = Math.max(1, Math.round(height * scale));
      const canvas = new OffscreenCanvas(w, h);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, w, h);
      ctx.drawImage(bitmap, 0, 0, w, h);
      for (const quality of QUALITIES) {
        const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality });
        if (blob.size <= THUMB_MAX_BYTES) return { thumb: new Uint8Array(await blob.arrayBuffer()), width, height };
      }
    }
    return { thumb: null, width, height };
  } finally {
    bitmap.close();
  }
}
