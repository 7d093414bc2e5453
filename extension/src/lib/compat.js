/**
 * Where Chromium and Firefox differ, beyond what the two manifests say.
 */

import * as api from "./api.js";

/**
 * Where the passes live: `storage.session` (memory only, gone with the browser
 * session, closed to content scripts), or `storage.local` on a browser without it.
 */
export function secretStorage() {
  return api.storage.session ?? api.storage.local;
}

/** Close session storage to content scripts where the browser lets us say so. */
export async function restrictSecretStorage() {
  try {
    await api.storage.restrictSession();
  } catch {
    // Firefox keeps storage.session from content scripts without being asked, and may not
    // offer setAccessLevel at all.
  }
}

/**
 * Open the sign-in for a tab: the toolbar popup where the browser allows it without a click
 * (Chromium 127+), else the same page in a new tab, pointed at the tab it came from.
 */
export async function openSignIn(tab) {
  try {
    await api.action.openPopup(tab?.windowId);
  } catch {
    const query = tab?.id === undefined ? "" : `?tab=${tab.id}`;
    await api.tabs.open(api.runtime.getURL(`popup/popup.html${query}`));
  }
}

/** A label for this device in the supporter's session list ("Chromium on Linux"). */
export function deviceLabel(agent = globalThis.navigator?.userAgent ?? "") {
  const browser = api.browserName === "firefox" ? "Firefox" : brandOf(agent);
  const system = [
    [/Android/, "Android"],
    [/iPhone|iPad/, "iOS"],
    [/CrOS/, "ChromeOS"],
    [/Mac OS X|Macintosh/, "macOS"],
    [/Windows/, "Windows"],
    [/Linux/, "Linux"],
  ].find(([pattern]) => pattern.test(agent))?.[1];
  return system ? `${browser} on ${system}` : browser;
}

function brandOf(agent) {
  if (/Edg\//.test(agent)) return "Edge";
  if (/OPR\//.test(agent)) return "Opera";
  if (/Chromium\//.test(agent)) return "Chromium";
  return "Chrome";
}
