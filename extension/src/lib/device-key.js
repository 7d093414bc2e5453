/**
 * The device's DPoP key pair, kept in IndexedDB: the private key is a non-extractable CryptoKey,
 * so the browser stores it without the extension (or anyone reading the profile's storage
 * through the extension) ever holding its bytes. Works in Chromium's service worker and in
 * Firefox's event page, which both have IndexedDB.
 *
 * A session bound to this key is worthless without it: uninstalling the extension, or clearing
 * its data, ends every membership's session at the next refresh.
 */

import { generateDeviceKey } from "./dpop.js";

const DATABASE = "supportgate";
const STORE = "keys";
const KEY_NAME = "device";

let pending = null;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(database, mode, work) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(STORE, mode);
    const request = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

async function loadOrCreate() {
  const database = await open();
  try {
    const stored = await run(database, "readonly", (store) => store.get(KEY_NAME));
    if (stored?.privateKey && stored?.publicJwk) return stored;
    const made = await generateDeviceKey();
    try {
      await run(database, "readwrite", (store) => store.add(made, KEY_NAME));
      return made;
    } catch {
      // Another context stored its key first: use that one.
      return await run(database, "readonly", (store) => store.get(KEY_NAME));
    }
  } finally {
    database.close();
  }
}

/** The stored key pair `{privateKey, publicJwk}`, made and stored on first use. */
export function deviceKey() {
  if (pending === null) {
    pending = loadOrCreate().catch((error) => {
      pending = null;
      throw error;
    });
  }
  return pending;
}
