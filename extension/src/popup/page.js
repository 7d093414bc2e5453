/**
 * The page in the tab the popup looks at: its origin, the gate and site it names (its
 * `<meta name="supportgate">` advertisement, else the gate.js it loads), and what its ad-block
 * detection found.
 */

import * as api from "../lib/api.js";
import { originOf, parseGateMeta, parseGateScript } from "../lib/origins.js";

const DETECTION = new Set(["blocked", "clear", "inconclusive"]);

// The two functions below run inside the tab, not here: they are sent to the page and must not
// use anything from this module.
function readAdvert() {
  const meta = document.querySelector('meta[name="supportgate"]');
  const scripts = [...document.querySelectorAll("script[src]")].map((script) => script.src).slice(0, 50);
  return { url: location.href, meta: meta ? meta.getAttribute("content") : null, scripts };
}

function readDetection() {
  const found = window.supportgate && window.supportgate.detection;
  return found && typeof found.result === "string" ? found.result : null;
}

/**
 * The page in the current tab, or in the tab `?tab=<id>` names: `{origin, advert, detection}`,
 * or null when it can't be read.
 */
export async function readPage() {
  const param = new URLSearchParams(location.search).get("tab");
  const tabId = param === null ? (await api.tabs.active())?.id : Number(param);
  if (!Number.isInteger(tabId)) return null;
  try {
    // The isolated world: the page's scripts cannot change what it sees of the DOM API.
    const seen = await api.runInTab(tabId, readAdvert);
    const origin = originOf(seen?.url ?? "");
    if (origin === null) return null;
    const detection = await api.runInTab(tabId, readDetection, "MAIN").catch(() => null);
    return {
      origin,
      advert: parseGateMeta(seen.meta) ?? gateFromScripts(seen.scripts),
      detection: DETECTION.has(detection) ? detection : null,
    };
  } catch {
    return null;
  }
}

function gateFromScripts(scripts) {
  if (!Array.isArray(scripts)) return null;
  for (const src of scripts) {
    const found = parseGateScript(src);
    if (found !== null) return found;
  }
  return null;
}
