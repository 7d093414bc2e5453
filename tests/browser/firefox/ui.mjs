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
