/**
 * Drives Firefox ESR for tests/browser/test_firefox.py, one step at a time.
 *
 * Started as `node driver.mjs '<config JSON>'`: it launches Firefox, installs the add-ons, waits for
 * the blocker's rules and points the extension at the gate, then prints one JSON line
 * `{"ok": true, "result": {...}}`. After that it reads one JSON command a line from stdin,
 * `{"step": NAME, "args": {...}}`, and answers each with one JSON line, `{"ok": true, "result": ...}`
 * or `{"ok": false, "error": "..."}`. So pytest holds the steps and the assertions (and the
 * sign-in code it reads from the mail), and the browser lives for the whole test module.
 * End of stdin, or the step "quit", closes Firefox; so does any signal.
 */

import { createInterface } from "node:readline";
import { launchFirefox, navigate } from "./launch.mjs";
import * as ui from "./ui.mjs";

const config = JSON.parse(process.argv[2]);
const TIMEOUT = config.timeout ?? 15_000;
const extensionOrigin = `moz-extension://${config.uuid}`;

// Records every shadow root attached (even closed ones, so the wall can be found) from before any
// page script runs: the same watch the Chromium suite installs.
const WATCH_SCRIPT = `(() => {
  const watch = (window.__sgTest = { shadows: [] });
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    watch.shadows.push(root);
    return root;
  };
})();`;

let browser;
let article;
let popup;
let about;

async function closeBrowser() {
  const open = browser;
  browser = undefined;
  if (open) await open.close().catch(() => {});
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => closeBrowser().finally(() => process.exit(1)));
}

async function withTimeout(what, promise, ms = TIMEOUT) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** A tab on an extension page (the popup), opened once and navigated from then on. */
async function extensionPage(path, viewport) {
  if (!popup) {
    popup = await browser.newPage();
    popup.setDefaultTimeout(TIMEOUT);
  }
  await popup.setViewport(viewport);
  await withTimeout(`opening ${path}`, navigate(popup, `${extensionOrigin}/${path}`));
  await ui.waitReady(popup, TIMEOUT);
  return popup;
}

/** A tab on Firefox's own page `url` (about:debugging, about:addons), opened once, `width` wide. */
async function firefoxPage(url, width) {
  if (!about) {
    about = await browser.newPage();
    about.setDefaultTimeout(TIMEOUT);
  }
  await about.setViewport({ width, height: 800 });
  await withTimeout(`opening ${url}`, navigate(about, url));
  return about;
}

/** Screenshot `clip` of the tab on Firefox's own page into `path`; what the page showed, with the clip. */
async function firefoxShot(shown, path) {
  await about.screenshot({ path, clip: shown.clip });
  return shown;
}

/** The browser's tab id of the article tab, asked from an extension page. */
async function articleTabId() {
  const url = await article.evaluate(() => location.href);
  const page = await extensionPage(ui.PAGE.popup, { width: 380, height: 640 });
  const tabs = await page.evaluate(async () => (await browser.tabs.query({})).map((t) => [t.id, t.url]));
  const ids = tabs.filter(([, tabUrl]) => tabUrl === url).map(([id]) => id);
  if (!ids.length) throw new Error(`no tab shows ${url}: ${JSON.stringify(tabs)}`);
  return Math.max(...ids);
}

async function openPopup() {
  const tab = article ? await articleTabId() : null;
  return extensionPage(`${ui.PAGE.popup}${tab === null ? "" : `?tab=${tab}`}`, { width: 380, height: 640 });
}

/** The article tab, opened once, with the shadow-root watch in every document it loads. */
async function articlePage() {
  if (!article) {
    article = await browser.newPage();
    article.setDefaultTimeout(TIMEOUT);
    await article.setViewport({ width: 1280, height: 900 });
    await article.evaluateOnNewDocument(WATCH_SCRIPT);
  }
  return article;
}

/** Open (or reload) the article and wait for gate.js's decision; a wall is waited for when decided. */
async function visitArticle(url) {
  await articlePage();
  await article.goto(url, { waitUntil: "load" });
  try {
    await article.waitForFunction(() => Boolean(window.supportgate?.decision), { timeout: TIMEOUT, polling: 50 });
  } catch (error) {
    throw new Error(`gate.js made no decision on ${url} within ${TIMEOUT} ms`, { cause: error });
  }
  const decision = await article.evaluate(() => window.supportgate.decision);
  if (decision.decision === "wall") {
    await article.waitForFunction(ui.wallIsUp, { timeout: TIMEOUT, polling: 50 }).catch((error) => {
      throw new Error("decide said wall but no wall was shown", { cause: error });
    });
  }
  return {
    decision: decision.decision,
    reason: decision.reason,
    supporter: decision.supporter ?? null,
    detection: await article.evaluate(() => window.supportgate.detection?.result ?? null),
    wall: await article.evaluate(ui.wallIsUp),
  };
}

/** Open the server-rendered article and wait until gate.js agrees with what the server assumed. */
async function visitServerArticle(url) {
  await articlePage();
  await article.goto(url, { waitUntil: "load" });
  try {
    await article.waitForFunction(
      () => {
        const script = document.querySelector('script[data-mode="server"]');
        const found = window.supportgate?.detection;
        return Boolean(found && script && script.dataset.assumed === found.result);
      },
      { timeout: TIMEOUT, polling: 50 },
    );
  } catch (error) {
    throw new Error(`the server-rendered ${url} never settled`, { cause: error });
  }
  return article.evaluate(() => {
    const main = document.querySelector("main");
    return { decision: main.dataset.sgDecision ?? null, reason: main.dataset.sgReason ?? null };
  });
}

// Posts a hello to the article's window as gate.js does; the pass that comes back, or null.
async function hello(site, wait) {
  return article.evaluate(
    ({ site, wait }) => {
      const nonce = "test" + Math.random().toString(36).slice(2, 12);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), wait);
        addEventListener("message", (event) => {
          const data = event.data;
          if (data && data.type === "supportgate:pass" && data.nonce === nonce) {
            clearTimeout(timer);
            resolve(data.pass);
          }
        });
        postMessage({ type: "supportgate:hello", site, nonce }, location.origin);
      });
    },
    { site, wait },
  );
}

/** Wait until the blocker's rules block `probe` (they load just after install). */
async function waitForBlocker(origin, probe) {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/demo/`, { waitUntil: "load" });
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const outcome = await page.evaluate(
        (url) => fetch(url, { cache: "no-store" }).then(() => "loaded", () => "blocked"),
        `${origin}${probe}`,
      );
      if (outcome === "blocked") return;
      if (Date.now() > deadline) throw new Error(`the blocker's rules never blocked ${probe}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await page.close();
  }
}

const STEPS = {
  article: ({ url }) => visitArticle(url),
  serverArticle: ({ url }) => visitServerArticle(url),
  hello: ({ site, wait = 3000 }) => hello(site, wait),
  requestCode: async ({ email }) => ui.requestCode(await openPopup(), email, TIMEOUT),
  enterCode: ({ email, code }) => ui.enterCode(popup, email, code, TIMEOUT),
  allow: async ({ site_name }) => ui.allowSite(await openPopup(), site_name, TIMEOUT),
  // The popup as it is now (not reopened, so its last message shows), as tall as its content.
  screenshotPopup: async ({ path }) => {
    await popup.setViewport({ width: 380, height: 100 });
    const height = await popup.evaluate(() => Math.ceil(document.documentElement.scrollHeight));
    await popup.setViewport({ width: 380, height });
    await popup.screenshot({ path });
    await popup.setViewport({ width: 380, height: 640 });
    return path;
  },
  // An add-on from a file (a folder or a zip), as a temporary add-on: BiDi's webExtension.install.
  installAddon: ({ path }) => browser.installExtension(path),
  // about:debugging → This Firefox, with the add-on called `addon` listed; cropped, into `path`.
  aboutDebugging: async ({ addon, path }) => {
    const page = await firefoxPage(ui.FIREFOX_PAGE.debugging, 900);
    return firefoxShot(await ui.aboutDebugging(page, addon, TIMEOUT), path);
  },
  // about:addons → Extensions, with the add-on `id` listed; cropped, into `path`.
  aboutAddons: async ({ id, path }) => {
    const page = await firefoxPage(ui.FIREFOX_PAGE.addons, 820);
    return firefoxShot(await ui.aboutAddons(page, id, TIMEOUT), path);
  },
  permissions: async () => {
    const page = await extensionPage(ui.PAGE.popup, { width: 380, height: 640 });
    return page.evaluate(() => browser.permissions.getAll());
  },
};

function answer(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

async function start() {
  const { browser: launched, installed } = await withTimeout(
    "launching Firefox and installing the add-ons",
    launchFirefox({
      executablePath: config.executablePath,
      profile: config.profile,
      uuids: config.uuids,
      proxyPort: config.proxyPort,
      extensions: config.extensions,
      timeout: TIMEOUT * 2,
    }),
    TIMEOUT * 3,
  );
  browser = launched;
  if (config.blockedProbe) await waitForBlocker(config.gate, config.blockedProbe);
  // The extension is tied to no gate: the article names the demo's, and the popup signs in there.
  // Firefox runs in a process group of its own: pytest kills that group too if this script dies.
  return { version: await browser.version(), installed, pid: browser.process()?.pid ?? null };
}

try {
  answer({ ok: true, result: await start() });
} catch (error) {
  answer({ ok: false, error: `could not start: ${error.stack ?? error}` });
  await closeBrowser();
  process.exit(1);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { step, args = {} } = JSON.parse(line);
  if (step === "quit") break;
  const run = STEPS[step];
  if (!run) {
    answer({ ok: false, error: `no step called ${step}` });
    continue;
  }
  try {
    const result = await withTimeout(`step ${step}`, Promise.resolve().then(() => run(args)), TIMEOUT * 2);
    answer({ ok: true, result: result ?? null });
  } catch (error) {
    answer({ ok: false, error: `${step}: ${error.stack ?? error}` });
  }
}
await closeBrowser();
process.exit(0);
