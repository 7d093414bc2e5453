/**
 * The scenario's UI steps: every selector and every message text the Firefox test relies on, in
 * one place. When the popup changes, adapt this file; the driver and the
 * pytest test only call these steps.
 */

/** Texts the steps look for (the English locale). */
export const TEXT = {
  emailLabel: "Email",
  sendCode: "Email me a code",
  codeLabel: "Code from the email",
  signIn: "Sign in",
  allow: (name) => `Let ${name} see that I'm a supporter`,
  shared: "Shared: no wall here",
};

/** The extension's pages, by their path in the build (the popup takes `?tab=<tab id>`). */
export const PAGE = {
  popup: "popup/popup.html",
};

/** Selectors the steps wait on. */
export const SELECTOR = {
  ready: "body[data-ready=true]",
  accountEmail: ".membership .account-email",
  siteStatus: "#site-status",
};

// In-page helpers, passed to page.evaluate as source: a control by its label, a button by its text.
const FIND = `
  const visible = (el) => el && !el.closest("[hidden]") && el.getClientRects().length > 0;
  const byLabel = (text) => {
    for (const label of document.querySelectorAll("label")) {
      if (label.textContent.trim() === text) {
        const control = label.control ?? label.querySelector("input, select, textarea");
        if (visible(control)) return control;
      }
    }
    return [...document.querySelectorAll("[aria-label]")].find((el) => el.getAttribute("aria-label") === text && visible(el)) ?? null;
  };
  const byButton = (text) =>
    [...document.querySelectorAll("button, [role=button], input[type=submit]")]
      .find((el) => (el.textContent || el.value || "").trim() === text && visible(el) && !el.disabled) ?? null;
`;

async function waitFor(page, what, check, arg, timeout) {
  try {
    await page.waitForFunction(check, { timeout, polling: 50 }, arg);
  } catch (error) {
    const shown = await page.evaluate(() => document.body?.innerText ?? "").catch(() => "(unreadable)");
    throw new Error(`timed out after ${timeout} ms waiting for ${what}; the page shows:\n${shown}`, { cause: error });
  }
}

/** Fill the control labelled `label` with `value`, as typing would (input and change events). */
export async function fill(page, label, value, timeout) {
  const check = new Function("label", `${FIND} return Boolean(byLabel(label));`);
  await waitFor(page, `a field labelled "${label}"`, check, label, timeout);
  await page.evaluate(
    new Function("label", "value", `${FIND}
      const control = byLabel(label);
      control.focus();
      control.value = value;
      control.dispatchEvent(new Event("input", { bubbles: true }));
      control.dispatchEvent(new Event("change", { bubbles: true }));`),
    label,
    value,
  );
}

/**
 * Click the enabled, visible button whose text is `text`, with a real mouse click (BiDi input
 * actions): the popup asks for the gate's host permission inside the click, and Firefox grants
 * `permissions.request` only "from a user input handler", which a scripted `el.click()` is not.
 */
export async function click(page, text, timeout) {
  const check = new Function("text", `${FIND} return Boolean(byButton(text));`);
  await waitFor(page, `a button "${text}"`, check, text, timeout);
  const button = await page.evaluateHandle(new Function("text", `${FIND} return byButton(text);`), text);
  try {
    await button.click();
  } finally {
    await button.dispose();
  }
}

/** Whether a button with this text is there now. */
export async function hasButton(page, text) {
  return page.evaluate(new Function("text", `${FIND} return Boolean(byButton(text));`), text);
}

/** Wait until the element `selector` shows text containing `text`. */
export async function waitForText(page, selector, text, timeout) {
  await waitFor(
    page,
    `"${text}" in ${selector}`,
    ([sel, words]) => (document.querySelector(sel)?.textContent ?? "").includes(words),
    [selector, text],
    timeout,
  );
}

/** Wait until an extension page has rendered. */
export async function waitReady(page, timeout) {
  await waitFor(page, "the page to be ready", (sel) => Boolean(document.querySelector(sel)), SELECTOR.ready, timeout);
}

/** Popup on the article, not signed in to its gate: ask for a code for `email`. */
export async function requestCode(page, email, timeout) {
  await waitReady(page, timeout);
  await fill(page, TEXT.emailLabel, email, timeout);
  await click(page, TEXT.sendCode, timeout);
  const check = new Function("label", `${FIND} return Boolean(byLabel(label));`);
  await waitFor(page, "the code field", check, TEXT.codeLabel, timeout);
}

/** Popup, code asked for: enter `code` and wait until the membership shows `email` (signing in
 * from the article's popup allows its site too). */
export async function enterCode(page, email, code, timeout) {
  await fill(page, TEXT.codeLabel, code, timeout);
  await click(page, TEXT.signIn, timeout);
  await waitForText(page, SELECTOR.accountEmail, email, timeout);
}

/** Popup, looking at a tab on the site called `name`: allow it unless it is already, and wait until it is shared. */
export async function allowSite(page, name, timeout) {
  await waitReady(page, timeout);
  if (await hasButton(page, TEXT.allow(name))) await click(page, TEXT.allow(name), timeout);
  await waitForText(page, SELECTOR.siteStatus, TEXT.shared, timeout);
}

/** In the article's page: whether the wall's dialog is up, in the page or in a shadow root gate.js
 * attached (the driver's watch script records closed ones too, in `window.__sgTest.shadows`). */
export function wallIsUp() {
  return Boolean(
    document.querySelector('[role="dialog"]') ||
      (window.__sgTest?.shadows ?? []).some((root) => root.querySelector('[role="dialog"]')),
  );
}

/**
 * Firefox's own pages, as the install page pictures them (Firefox's English locale): the tab
 * `about:debugging` → This Firefox, and `about:addons` on its Extensions list. BiDi navigates a tab
 * to them, and runs scripts in them, because the harness starts Firefox with
 * `--remote-allow-system-access`.
 */
export const FIREFOX_PAGE = {
  debugging: "about:debugging#/runtime/this-firefox",
  addons: "about:addons",
  /** The view about:addons' own Extensions button opens. */
  addonsExtensions: "addons://list/extension",
};

/** Selectors on Firefox's own pages (about:debugging marks its parts with `qa-` classes for Mozilla's tests). */
export const FIREFOX_SELECTOR = {
  debuggingSidebar: "aside.sidebar",
  debuggingRuntime: ".runtime-info",
  debuggingPane: ".qa-debug-target-pane",
  debuggingPaneTitle: ".qa-debug-target-pane-title",
  debuggingItem: ".qa-debug-target-item",
  debuggingItemName: ".debug-target-item__name",
  addonsSidebar: "categories-box moz-page-nav",
  addonsHeading: ".header-name",
  addonName: ".addon-name",
};

/** about:addons' card of the add-on `id`. */
export const addonCard = (id) => `addon-card[addon-id="${id}"]`;

/**
 * Like `waitFor`, polled from here with one evaluation at a time: puppeteer's waitForFunction never
 * resolves on Firefox's privileged pages (about:debugging), while a plain evaluation answers.
 */
async function pollFor(page, what, check, arg, timeout) {
  const deadline = Date.now() + timeout;
  while (!(await page.evaluate(check, arg))) {
    if (Date.now() > deadline) {
      const shown = await page.evaluate(() => document.body?.innerText ?? "").catch(() => "(unreadable)");
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; the page shows:\n${shown}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The rectangle around `rects` (DOMRect-like), widened by `margin`, inside the page, from `side`'s
 * left edge (a sidebar as tall as the page: only its left edge counts). */
function around(rects, margin, side) {
  const left = Math.max(0, Math.floor(Math.min(side.left, ...rects.map((r) => r.left)) - margin));
  const top = Math.max(0, Math.floor(Math.min(...rects.map((r) => r.top)) - margin));
  const right = Math.ceil(Math.max(...rects.map((r) => r.right)) + margin);
  const bottom = Math.ceil(Math.max(...rects.map((r) => r.bottom)) + margin);
  return { x: left, y: top, width: right - left, height: bottom - top };
}

/**
 * about:debugging → This Firefox, once it lists the add-on called `name`: the pane that lists it
 * (its title, e.g. "Temporary Extensions (1)"), the card's text, and the rectangle from the sidebar
 * (where **This Firefox** is) and the runtime's heading to the bottom of that pane.
 */
export async function aboutDebugging(page, name, timeout) {
  await pollFor(
    page,
    `about:debugging to list ${name}`,
    ([item, itemName, want]) =>
      [...document.querySelectorAll(item)].some((el) => el.querySelector(itemName)?.textContent.trim() === want),
    [FIREFOX_SELECTOR.debuggingItem, FIREFOX_SELECTOR.debuggingItemName, name],
    timeout,
  );
  const found = await page.evaluate(
    ([s, want]) => {
      const item = [...document.querySelectorAll(s.debuggingItem)].find(
        (el) => el.querySelector(s.debuggingItemName)?.textContent.trim() === want,
      );
      const pane = item.closest(s.debuggingPane);
      const parts = [document.querySelector(s.debuggingSidebar), document.querySelector(s.debuggingRuntime), pane];
      const missing = [s.debuggingSidebar, s.debuggingRuntime, s.debuggingPane].filter((_, i) => !parts[i]);
      if (missing.length) return { missing };
      return {
        pane: pane.querySelector(s.debuggingPaneTitle)?.textContent.trim() ?? "",
        card: item.innerText,
        rects: parts.map((el) => el.getBoundingClientRect().toJSON()),
      };
    },
    [FIREFOX_SELECTOR, name],
  );
  if (found.missing) throw new Error(`about:debugging has no ${found.missing.join(", ")}`);
  const [sidebar, ...shown] = found.rects;
  return { pane: found.pane, card: found.card, clip: around(shown, 16, sidebar) };
}

/**
 * about:addons on its Extensions list, once it shows the add-on `id`: the card's name and whether it
 * is on, and the rectangle from the category sidebar to the bottom of the card (with the heading and
 * the gear button the steps name).
 */
export async function aboutAddons(page, id, timeout) {
  await page.evaluate((view) => window.gViewController.loadView(view), FIREFOX_PAGE.addonsExtensions);
  await pollFor(
    page,
    `about:addons to show ${id}`,
    ([card, name]) => Boolean(document.querySelector(card)?.querySelector(name)?.textContent.trim()),
    [addonCard(id), FIREFOX_SELECTOR.addonName],
    timeout,
  );
  const found = await page.evaluate(
    ([s, card]) => {
      const parts = [document.querySelector(s.addonsSidebar), document.querySelector(s.addonsHeading), document.querySelector(card)];
      const missing = [s.addonsSidebar, s.addonsHeading, card].filter((_, i) => !parts[i]);
      if (missing.length) return { missing };
      const shown = parts[2];
      return {
        heading: parts[1].textContent.trim(),
        name: shown.querySelector(s.addonName).textContent.trim(),
        enabled: shown.addon?.isActive ?? null,
        rects: parts.map((el) => el.getBoundingClientRect().toJSON()),
      };
    },
    [FIREFOX_SELECTOR, addonCard(id)],
  );
  if (found.missing) throw new Error(`about:addons has no ${found.missing.join(", ")}`);
  const [sidebar, ...shown] = found.rects;
  const clip = around(shown, 16, sidebar);
  // From the top: the search field above the heading is part of the page a reader opens.
  return { heading: found.heading, name: found.name, enabled: found.enabled, clip: { ...clip, y: 0, height: clip.y + clip.height } };
}
