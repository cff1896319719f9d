/**
 * IndexedDB for this browser's state: the §3 keystore record per user, and small
 * per-device records (trust state, sync cursors, the ciphertext outbox, preferences).
 * Nothing here is plaintext of a message or an unlocked key.
 * @module store
 */

const DB_NAME = 'e2ee-chat';
const DB_VERSION = 1;
let dbPromise = null;

function open() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('keystores')) db.createObjectStore('keystores', { keyPath: 'user_id' });
        if (!db.objectStoreNames.contains('kv')) db.createObjectStore('kv');
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}

async function run(storeName, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    const result = fn(tx.objectStore(storeName));
    tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** The keystore record (PROTOCOL §3) of this user on this browser, or undefined. */
export function getKeystore(userId) {
  return run('keystores', 'readonly', (s) => s.get(userId));
}

/** Store (replace) the keystore record; its `user_id` is the key. */
export function putKeystore(record) {
  return run('keystores', 'readwrite', (s) => s.put(record));
}

export function deleteKeystore(userId) {
  return run('keystores', 'readwrite', (s) => s.delete(userId));
}

/** A small JSON value stored under `key` (scoped by the caller, e.g. `trust:<user>`). */
export function getItem(key) {
  return run('kv', 'readonly', (s) => s.get(key));
}

export function setItem(key, value) {
  return run('kv', 'readwrite', (s) => s.put(value, key));
}

export function deleteItem(key) {
  return run('kv', 'readwrite', (s) => s.delete(key));
}
