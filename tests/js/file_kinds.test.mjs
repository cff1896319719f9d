// static/chat/file-kinds.js: the pure helpers behind the attachment views (image sniffing,
// sizes, list previews, refusal sentences, what may be sent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as K from '../../static/chat/file-kinds.js';

const bytes = (...values) => new Uint8Array(values);
const ascii = (text) => new TextEncoder().encode(text);

test('sniffImageType knows PNG, JPEG, GIF and WebP by their bytes only', () => {
  assert.equal(K.sniffImageType(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0)), 'image/png');
  assert.equal(K.sniffImageType(bytes(0xff, 0xd8, 0xff, 0xe0)), 'image/jpeg');
  assert.equal(K.sniffImageType(ascii('GIF89a...')), 'image/gif');
  assert.equal(K.sniffImageType(ascii('GIF87a')), 'image/gif');
  assert.equal(K.sniffImageType(ascii('RIFF\x10\x00\x00\x00WEBPVP8 ')), 'image/webp');
  for (const other of [ascii('<svg xmlns="http://www.w3.org/2000/svg">'), ascii('<html>'), ascii('%PDF-1.7'), ascii('RIFF\x10\x00\x00\x00WAVE'), bytes(0xff, 0xd8), bytes()]) {
    assert.equal(K.sniffImageType(other), null);
  }
});

test('inline images and auto-download: the four types, no thumbnail, at most 10 MiB', () => {
  assert.ok(K.isInlineImage({ mime: 'image/png' }));
  assert.ok(K.isInlineImage({ mime: 'IMAGE/JPEG' }));
  assert.ok(!K.isInlineImage({ mime: 'image/svg+xml' }));
  assert.ok(!K.isInlineImage({ mime: 'text/html' }));
  assert.ok(K.autoDownloads({ mime: 'image/gif', size: 10 * 2 ** 20 }));
  assert.ok(!K.autoDownloads({ mime: 'image/gif', size: 10 * 2 ** 20 + 1 }));
  assert.ok(!K.autoDownloads({ mime: 'image/gif', size: 10, thumb: 'AAAA' }));
  assert.ok(!K.autoDownloads({ mime: 'application/pdf', size: 10 }));
});

test('formatSize', () => {
  assert.deepEqual([0, 1, 950, 1024, 12_600, 5 * 2 ** 20, 100 * 2 ** 20, 3 * 2 ** 30].map(K.formatSize),
    ['0 bytes', '1 byte', '950 bytes', '1 KB', '12.3 KB', '5 MB', '100 MB', '3 GB']);
});

test('refuseToSend: over 100 MiB, before anything is read', () => {
  assert.equal(K.refuseToSend(100 * 2 ** 20, 'a.bin'), null);
  assert.equal(K.refuseToSend(100 * 2 ** 20 + 1, 'a.bin'), '“a.bin” is 100 MB; files can be at most 100 MB.');
});

test('sendableMime keeps a well-formed type, else application/octet-stream', () => {
  assert.equal(K.sendableMime('Image/PNG'), 'image/png');
  assert.equal(K.sendableMime('application/vnd.ms-excel'), 'application/vnd.ms-excel');
  for (const bad of ['', 'text', 'text/html; charset=utf-8', 'a/b/c', 'x'.repeat(300) + '/y', null]) {
    assert.equal(K.sendableMime(bad), 'application/octet-stream');
  }
});

test('previewOf: text, files, photos, and nothing for what shows no text', () => {
  const file = { name: 'report.pdf', mime: 'application/pdf', size: 5 };
  const photo = { name: 'a.jpg', mime: 'image/jpeg', size: 5 };
  assert.equal(K.previewOf({ status: 'ok', text: 'hello\nsecond line' }), 'hello');
  assert.equal(K.previewOf({ status: 'ok', text: '', file }), '📎 report.pdf');
  assert.equal(K.previewOf({ status: 'ok', text: 'see this', file }), '📎 report.pdf: see this');
  assert.equal(K.previewOf({ status: 'ok', text: '', file: photo }), 'Photo');
  assert.equal(K.previewOf({ status: 'ok', text: 'the harbour', file: photo }), 'Photo: the harbour');
  assert.equal(K.previewOf({ status: 'ok', text: '', fileRefused: 'bad_meta' }), 'File refused');
  for (const status of ['failed', 'replayed', 'out_of_order', 'unsupported', 'deleted']) assert.equal(K.previewOf({ status, text: 'x' }), null);
  assert.equal(K.previewOf(null), null);
});

test('refusalText is one plain sentence per code', () => {
  for (const code of ['bad_length', 'bad_chunk', 'bad_last', 'bad_padding', 'bad_hash', 'bad_meta', 'other']) {
    assert.match(K.refusalText(code), /^This file was refused: it was changed or damaged on the way \(.+\)\.$/);
  }
});

test('pastedName names clipboard images', () => {
  assert.equal(K.pastedName({ name: 'image.png', type: 'image/png' }), 'Pasted image.png');
  assert.equal(K.pastedName({ name: '', type: 'image/jpeg' }), 'Pasted image.jpg');
  assert.equal(K.pastedName({ name: 'holiday.webp', type: 'image/webp' }), 'holiday.webp');
});

test('filesOf: all files of a drop, only images of a paste', () => {
  const files = [{ type: 'image/png' }, { type: 'application/pdf' }];
  assert.equal(K.filesOf({ files }).length, 2);
  assert.deepEqual(K.filesOf({ files }, { imagesOnly: true }), [files[0]]);
  assert.deepEqual(K.filesOf(null), []);
});
