/**
 * Start Debian's Firefox ESR headless, driven over WebDriver BiDi by puppeteer-core, and install
 * extensions into it as temporary add-ons. Nothing here downloads a browser.
 */

import puppeteer from "puppeteer-core";

/**
 * Prefs on top of the ones puppeteer-core writes into every Firefox profile it creates (no update
 * checks, no data reporting, no safe browsing, a blank start page; see @puppeteer/browsers'
 * `defaultProfilePreferences`).
 *
 * @param {object} options
 * @param {Record<string, string>} options.uuids add-on id → the moz-extension:// host it gets
 * @param {number} options.proxyPort every http:// request goes to 127.0.0.1 on this port (the demo
 *   server answers absolute-form requests, so `http://news.example/...` reaches it with its own Host)
 */
export function firefoxPrefs({ uuids, proxyPort }) {
  return {
    // A fixed moz-extension:// host per add-on, so the test can open the popup page.
    "extensions.webextensions.uuids": JSON.stringify(uuids),
    // No sign-in, welcome or "what's new" pages, no recommendations, no add-on update checks.
    "browser.aboutwelcome.enabled": false,
    "browser.startup.homepage_override.mstone": "ignore",
    "trailhead.firstrun.didSeeAboutWelcome": true,
    "extensions.update.enabled": false,
    "extensions.getAddons.cache.enabled": false,
    "extensions.htmlaboutaddons.recommendations.enabled": false,
    "browser.discovery.enabled": false,
    // Nothing to Mozilla: telemetry, studies, remote settings, captive portal, connectivity checks.
    "toolkit.telemetry.enabled": false,
    "toolkit.telemetry.unified": false,
    "toolkit.telemetry.server": "",
    "datareporting.policy.dataSubmissionEnabled": false,
    "datareporting.healthreport.uploadEnabled": false,
    "app.shield.optoutstudies.enabled": false,
    "app.normandy.enabled": false,
    "app.update.auto": false,
    "app.update.disabledForTesting": true,
    // Honoured on a release build only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (set at launch).
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "messaging-system.rsexperimentloader.enabled": false,
    "network.captive-portal-service.enabled": false,
    "network.connectivity-service.enabled": false,
    "network.dns.disablePrefetch": true,
    "network.prefetch-next": false,
    "network.http.speculative-parallel-limit": 0,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.ping-centre.telemetry": false,
    "browser.newtabpage.activity-stream.feeds.telemetry": false,
    "browser.newtabpage.activity-stream.telemetry": false,
    "browser.search.geoip.url": "",
    "geo.provider.network.url": "",
    // Every http:// host is the demo, through one proxy on loopback (there is no other network).
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": proxyPort,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": proxyPort,
    "network.proxy.no_proxies_on": "",
    "network.trr.mode": 5,
    // The wall is the page's own; keep the browser from pausing or blocking the test's pages.
    "dom.disable_open_during_load": false,
    "intl.locale.requested": "en-GB",
    "intl.accept_languages": "en-GB, en",
  };
}

/**
 * Launch headless Firefox ESR with a fresh profile under `profile` and install `extensions`
 * (unpacked folders) as temporary add-ons over BiDi's webExtension.install.
 *
 * `--remote-allow-system-access` lets BiDi navigate a tab to moz-extension:// pages (the popup);
 * without it Firefox answers "Navigation to ... is not allowed in this context".
 */
export async function launchFirefox({ executablePath, profile, uuids, proxyPort, extensions, timeout = 30_000 }) {
  const browser = await puppeteer.launch({
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath,
    headless: true,
    userDataDir: profile,
    args: ["--no-remote", "--remote-allow-system-access"],
    extraPrefsFirefox: firefoxPrefs({ uuids, proxyPort }),
    timeout,
    protocolTimeout: timeout,
    env: { ...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: "1" },
    // Not dumpio: that would copy Firefox's stdout into ours, which carries the driver's answers.
    dumpio: false,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  // Firefox's own output (JavaScript errors in the add-ons among it) goes to our stderr, the log
  // the test shows when a step fails.
  browser.process()?.stdout?.pipe(process.stderr);
  browser.process()?.stderr?.pipe(process.stderr);
  try {
    const installed = [];
    for (const path of extensions) installed.push(await browser.installExtension(path));
    return { browser, installed };
  } catch (error) {
    await browser.close().catch(() => {});
    throw error;
  }
}

/** Navigate `page` and wait for the load, without puppeteer's lifecycle tracking (which does not follow
 * a tab into the extension process: it never sees moz-extension:// loads finish). */
export async function navigate(page, url) {
  await page.mainFrame().browsingContext.navigate(url, "complete");
}
