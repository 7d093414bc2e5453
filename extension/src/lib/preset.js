/**
 * A branded build's preset: `preset.json` at the extension's root, written by the build, names
 * one gate (and what to call it). An unbranded build has no such file.
 */

import { normaliseGateUrl } from "./origins.js";

/** The preset from the file's parsed JSON: `{gate, name}` (name may be null), or null if unusable. */
export function parsePreset(body) {
  if (body === null || typeof body !== "object") return null;
  const gate = normaliseGateUrl(body.gate);
  if (gate === null) return null;
  const name = typeof body.name === "string" && body.name.trim() ? body.name.trim().slice(0, 200) : null;
  return { gate, name };
}

/** Read the preset with `fetchImpl` from `url` (the extension's own file): null when absent or unusable. */
export async function readPreset(url, fetchImpl = globalThis.fetch.bind(globalThis)) {
  try {
    const response = await fetchImpl(url, { cache: "no-store" });
    if (!response.ok) return null;
    return parsePreset(await response.json());
  } catch {
    return null;
  }
}
