/**
 * Every browser API the extension uses, in one place. Nothing else touches `chrome.*` or
 * `browser.*` (the handshake content script, a classic script, is the one exception).
 *
 * Firefox provides `browser`, Chromium `chrome`; in Manifest V3 both return promises.
 */

const ns = globalThis.browser ?? globalThis.chrome;

/** The browser's name for this build: from the extension URL's scheme. */
export const browserName = ns.runtime.getURL("").startsWith("moz-extension:") ? "firefox" : "chromium";

export const runtime = {
  id: () => ns.runtime.id,
  getURL: (path) => ns.runtime.getURL(path),
  version: () => ns.runtime.getManifest().version,
  sendMessage: (message) => ns.runtime.sendMessage(message),
  /** Answer messages with `handler(message, sender)`'s promised result. */
  onMessage(handler) {
    ns.runtime.onMessage.addListener((message, sender, sendResponse) => {
      Promise.resolve()
        .then(() => handler(message, sender))
        .then(sendResponse, () => sendResponse({ ok: false, error: { code: "internal", message: "no answer" } }));
      return true;
    });
  },
  onStartup: (listener) => ns.runtime.onStartup.addListener(listener),
  onInstalled: (listener) => ns.runtime.onInstalled.addListener(listener),
};

function area(storageArea) {
  return {
    async get(key, fallback) {
      const found = await storageArea.get(key);
      return Object.hasOwn(found, key) ? found[key] : fallback;
    },
    set: (key, value) => storageArea.set({ [key]: value }),
    remove: (keys) => storageArea.remove(keys),
  };
}

export const storage = {
  local: area(ns.storage.local),
  /** In-memory storage for this browser session, or null where the browser has none. */
  session: ns.storage.session ? area(ns.storage.session) : null,
  /** Keep session storage from content scripts (the default; said explicitly where supported). */
  async restrictSession() {
    await ns.storage.session?.setAccessLevel?.({ accessLevel: "TRUSTED_CONTEXTS" });
  },
};

export const alarms = {
  set: (name, when) => ns.alarms.create(name, { when }),
  clear: (name) => ns.alarms.clear(name),
  onAlarm: (listener) => ns.alarms.onAlarm.addListener(listener),
};

export const permissions = {
  request: (origins) => ns.permissions.request({ origins }),
  contains: (origins) => ns.permissions.contains({ origins }),
  remove: (origins) => ns.permissions.remove({ origins }),
  onRemoved: (listener) => ns.permissions.onRemoved.addListener(listener),
  onAdded: (listener) => ns.permissions.onAdded.addListener(listener),
};

export const headerRules = {
  current: () => ns.declarativeNetRequest.getSessionRules(),
  replace: (removeRuleIds, addRules) => ns.declarativeNetRequest.updateSessionRules({ removeRuleIds, addRules }),
};

export const contentScripts = {
  registered: (ids) => ns.scripting.getRegisteredContentScripts({ ids }),
  register: (scripts) => ns.scripting.registerContentScripts(scripts),
  update: (scripts) => ns.scripting.updateContentScripts(scripts),
  unregister: (ids) => ns.scripting.unregisterContentScripts({ ids }),
};

/** Run `func` in a tab's top frame and give back its result (null when the page refuses). */
export async function runInTab(tabId, func, world = "ISOLATED") {
  const [result] = await ns.scripting.executeScript({ target: { tabId }, func, world });
  return result?.result ?? null;
}

export const tabs = {
  async active() {
    const [tab] = await ns.tabs.query({ active: true, currentWindow: true });
    return tab ?? null;
  },
  get: (tabId) => ns.tabs.get(tabId),
  open: (url) => ns.tabs.create({ url }),
};

export const action = {
  /** Open the toolbar popup; rejects where the browser does not allow it here. */
  openPopup: (windowId) =>
    ns.action.openPopup ? ns.action.openPopup({ windowId }) : Promise.reject(new Error("no action.openPopup")),
};

export const i18n = {
  message: (key, substitutions) => ns.i18n.getMessage(key, substitutions),
  language: () => ns.i18n.getUILanguage(),
};
