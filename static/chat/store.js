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

/**
 * Read, change and write one `kv` value inside one readwrite transaction, so two tabs
 * of this profile never interleave (IndexedDB runs overlapping readwrite transactions
 * one after the other). `change(current)` gets the stored value (undefined if none) and
 * returns the value to store (undefined: store nothing); it must be synchronous.
 * Resolves what `change` returned.
 */
export async function updateItem(key, change) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('kv', 'readwrite');
    const store = tx.objectStore('kv');
    let result;
    const read = store.get(key);
    read.onsuccess = () => {
      try {
        result = change(read.result);
      } catch (error) {
        tx.abort();
        reject(error);
        return;
      }
      if (result !== undefined) store.put(result, key);
    };
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** Every `kv` value whose key starts with `prefix`, as [key, value] pairs in key order. */
export async function itemsWithPrefix(prefix) {
  const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('kv', 'readonly');
    const store = tx.objectStore('kv');
    const keys = store.getAllKeys(range);
    const values = store.getAll(range);
    tx.oncomplete = () => resolve(keys.result.map((key, i) => [key, values.result[i]]));
    tx.onerror = () => reject(tx.error);
  });
}

/**
 * The `kv` store as one object, the form the chat's stores take (tests give them an
 * in-memory one of the same shape): get, set, remove, update, list.
 */
export const kv = {
  get: getItem,
  set: setItem,
  remove: deleteItem,
  update: updateItem,
  list: itemsWithPrefix,
};
