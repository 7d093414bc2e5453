/**
 * Small helpers for the popup's views: localised strings, building DOM
 * without HTML strings, the page's message line, and talking to the service worker.
 */

import * as api from "./api.js";

/** The localised message for `key`, with `$1`-style substitutions. */
export function t(key, ...substitutions) {
  return api.i18n.message(key, substitutions.map(String)) || key;
}

/** Fill every `[data-i18n]` element's text (and `[data-i18n-label]`'s aria-label) under `root`. */
export function localise(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  document.documentElement.lang = api.i18n.language();
}

/**
 * An element: `h("button", {type: "button", onclick}, "Remove")`. Children are nodes or text;
 * text is always set as text, never parsed as HTML.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Show `text` in the page's `#message` line, as an error when `error` is set. */
export function say(text, { error = false } = {}) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.classList.toggle("error", error);
}

/** Send a message to the service worker; its answer (`{ok, ...}`). */
export async function send(message) {
  let answer;
  try {
    answer = await api.runtime.sendMessage(message);
  } catch {
    // A worker that could not be reached is the same as one that did not answer.
  }
  return answer ?? { ok: false, error: { code: "internal", message: t("errorNoAnswer") } };
}

/** A date (epoch ms or ISO string) in the reader's language; empty for no valid date. */
export function formatDate(value, { withTime = false } = {}) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const options = withTime ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "long" };
  return new Intl.DateTimeFormat(api.i18n.language(), options).format(date);
}
