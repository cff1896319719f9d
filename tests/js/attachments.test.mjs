// static/chat/attachments.js on the Python-made vectors (tests/vectors/attachments.json):
// Padmé, blob sizes, aad and nonces, byte-for-byte blobs, every tampered blob refused with
// Python's code (fed whole and in pieces), payload validation, name cleaning; and the edges.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as A from '../../static/chat/attachments.js';
import { b64decode, b64encode, ProtocolError } from '../../static/chat/protocol.js';
import { vector } from './helpers.mjs';

const V = vector('attachments.json');
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The vectors' file of `size` bytes: byte i is (i * 7 + 3) mod 251. */
export function pattern(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) out[i] = (i * 7 + 3) % 251;
  return out;
}

function join(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function assemble(blob, parts) {
  return join(parts.map((part) => (Array.isArray(part) ? blob.subarray(part[0], part[1]) : b64decode(part.b64))));
}

async function encryptInPieces(data, piece, options) {
  const encryptor = new A.FileEncryptor(data.length, options);
  const out = [];
  for (let i = 0; i < data.length; i += piece) out.push(await encryptor.update(data.subarray(i, i + piece)));
  out.push(await encryptor.finish());
  return join(out);
}

async function decryptInPieces(meta, blob, piece) {
  const decryptor = new A.FileDecryptor(meta);
  const out = [];
  for (let i = 0; i < blob.length; i += piece) out.push((await decryptor.update(blob.subarray(i, i + piece))).slice());
  const whole = await decryptor.finish();
  assert.deepEqual(join(out), whole);
  return whole;
}

const options = { key: b64decode(V.key), prefix: b64decode(V.prefix) };
const honest = {};
for (const [name, entry] of Object.entries(V.files)) {
  honest[name] = (await A.encryptFile(pattern(entry.file.size), options)).blob;
}

describe('sizes, aad, nonces', () => {
  test('padme, blobSize, isBlobSize match Python', () => {
    for (const [length, padded] of V.padme) assert.equal(A.padme(length), padded, String(length));
    for (const [size, length] of V.blob_size) assert.equal(A.blobSize(size), length);
    for (const [length, valid] of V.is_blob_size) assert.equal(A.isBlobSize(length), valid, String(length));
    assert.throws(() => A.padme(-1), RangeError);
    assert.throws(() => A.padme(1.5), RangeError);
  });

  test('aad and nonces match Python', () => {
    const decoder = new TextDecoder();
    for (const [index, last, text] of V.aad) assert.equal(decoder.decode(A.fileChunkAad(index, last)), text);
    for (const [prefix, index, nonce] of V.nonce) assert.equal(b64encode(A.fileChunkNonce(b64decode(prefix), index)), nonce);
  });
});

describe('the vector files', () => {
  for (const [name, entry] of Object.entries(V.files)) {
    test(`${name} is reproduced byte for byte and opens`, async () => {
      const data = pattern(entry.file.size);
      assert.equal(sha(honest[name]), entry.blob_sha256);
      assert.equal(honest[name].length, A.blobSize(entry.file.size));
      assert.equal(await A.fileSha256(data), entry.file.sha256);
      assert.equal(await A.fileSha256(new Blob([data])), entry.file.sha256);
      for (const piece of [65536, 10007, 2 ** 30]) {
        const blob = await encryptInPieces(data, piece, options);
        assert.equal(sha(blob), entry.blob_sha256, `${name} in pieces of ${piece}`);
        assert.deepEqual(await decryptInPieces(entry.file, blob, piece), data);
      }
    });
  }
});

describe('tampered blobs', () => {
  for (const tamper of V.tampered) {
    test(`${tamper.name} is refused with ${tamper.error}`, async () => {
      const blob = assemble(honest[tamper.base], tamper.parts);
      for (const piece of [blob.length + 1, 10007, 65552]) {
        await assert.rejects(
          async () => decryptInPieces(tamper.file, blob, piece),
          (error) => error instanceof A.FileRefused && error.code === tamper.error,
          `${tamper.name} in pieces of ${piece}`,
        );
      }
    });
  }
});

describe('payloads and names', () => {
  test('valid payloads pass and every invalid one is bad_meta', () => {
    for (const payload of V.payloads.valid) assert.equal(A.validateFilePayload(payload), payload.file);
    for (const [name, payload] of V.payloads.invalid) {
      assert.throws(() => A.validateFilePayload(payload), (e) => e instanceof A.FileRefused && e.code === 'bad_meta', name);
    }
    const meta = V.payloads.valid[0].file;
    assert.deepEqual(A.filePayload(meta), { type: 'file', file: meta });
    assert.equal(A.filePayload(meta, { text: 'hi' }).text, 'hi');
    assert.deepEqual(A.filePayload(meta, { replyTo: { sender_id: 1, client_msg_id: V.payloads.valid[0].reply_to.client_msg_id } }).reply_to.sender_id, 1);
    assert.throws(() => A.filePayload({ ...meta, size: -1 }), A.FileRefused);
    assert.ok(A.isInlineImage({ mime: 'image/webp' }) && !A.isInlineImage({ mime: 'image/svg+xml' }));
  });

  test('cleanFileName matches Python', () => {
    for (const [name, cleaned] of V.clean_file_name) assert.equal(A.cleanFileName(name), cleaned, JSON.stringify(name));
    assert.equal(A.cleanFileName(null), 'file');
  });
});

describe('streaming edges', () => {
  test('the encryptor refuses wrong amounts, oversize files and overlapping calls', async () => {
    assert.throws(() => new A.FileEncryptor(A.MAX_FILE_BYTES + 1), (e) => e instanceof ProtocolError && e.code === 'too_large');
    const encryptor = new A.FileEncryptor(10);
    await assert.rejects(encryptor.update(new Uint8Array(11)), RangeError);
    await encryptor.update(new Uint8Array(9));
    await assert.rejects(encryptor.finish(), RangeError);
    const busy = new A.FileEncryptor(200000);
    const first = busy.update(new Uint8Array(100000));
    await assert.rejects(busy.update(new Uint8Array(1)), /await the previous call/);
    await first;
    const a = new A.FileEncryptor(0);
    assert.equal(a.key.length, 32);
    assert.equal(a.prefix.length, 8);
    assert.notDeepEqual(a.key, new A.FileEncryptor(0).key);
  });

  test('odd sizes round trip in odd pieces', async () => {
    for (const size of [1, 255, 256, 257, 65535, 65537, 131072, 131073, 300001]) {
      const data = pattern(size);
      const { blob, encryptor } = await A.encryptFile(data);
      const meta = { key: b64encode(encryptor.key), prefix: b64encode(encryptor.prefix), size, sha256: encryptor.sha256 };
      assert.deepEqual(await decryptInPieces(meta, blob, 4099), data);
      assert.deepEqual(await A.decryptFile(meta, blob), data);
    }
  });

  test('the decryptor refuses a bad meta at construction', () => {
    assert.throws(() => new A.FileDecryptor({ key: 'x' }), (e) => e.code === 'bad_meta');
  });
});
