// Run by tests/test_js_interop.py: reads {"file", "blob", "tampered"} from stdin (a file
// Python encrypted, and tampered copies of its blob), opens the file and gives the code it
// refuses each tampered copy with; then encrypts a random file of its own (in pieces) for
// Python to open. Prints JSON.
import { readFileSync } from 'node:fs';
import * as A from '../../static/chat/attachments.js';
import { b64decode, b64encode } from '../../static/chat/protocol.js';

const input = JSON.parse(readFileSync(0, 'utf8'));
const opened = await A.decryptFile(input.file, b64decode(input.blob));
const refused = {};
for (const [name, blob] of Object.entries(input.tampered)) {
  try {
    await A.decryptFile(input.file, b64decode(blob));
    refused[name] = 'ok';
  } catch (error) {
    refused[name] = error instanceof A.FileRefused ? error.code : `threw ${error}`;
  }
}

const size = 200003;
const data = new Uint8Array(size);
for (let i = 0; i < size; i += 65536) globalThis.crypto.getRandomValues(data.subarray(i, i + 65536));
const encryptor = new A.FileEncryptor(size);
const parts = [];
for (let i = 0; i < size; i += 30000) parts.push(await encryptor.update(data.subarray(i, i + 30000)));
parts.push(await encryptor.finish());
const blob = new Uint8Array(await new Blob(parts).arrayBuffer());
const meta = {
  blob: 'QUJDREVGR0hJSktMTU5PUA',
  key: b64encode(encryptor.key),
  prefix: b64encode(encryptor.prefix),
  size,
  sha256: await A.fileSha256(data),
  name: A.cleanFileName('from JS ✓.bin'),
  mime: 'application/octet-stream',
};
const payload = A.filePayload(meta, { text: 'a caption from JS' });
process.stdout.write(JSON.stringify({
  opened_sha256: await A.fileSha256(opened),
  refused,
  payload,
  blob: b64encode(blob),
  plaintext: b64encode(data),
}));
