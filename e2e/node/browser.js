'use strict';
// Headless-browser step of the OAuth web-server flow, for every e2e client.
//
// authorizeInBrowser(authUrl, { username, password, redirectPrefix }) opens authUrl in Debian's
// chromium (driven by playwright-core; no browser is ever downloaded), logs in on Valet's login
// page, clicks "Allow" (or opts.decision = 'deny') on the consent page when it is shown, and resolves with the full URL of the
// redirect to redirectPrefix (the callback host does not listen: the request is intercepted).
//
// approveDeviceInBrowser(verificationUri, userCode, { username, password }) is the person's side
// of a device flow: /setup/connect, login, the user code, "Connect", Allow; resolves with the
// text of the final page.
//
// CLI: node browser.js <authUrl> <username> <password> <redirectPrefix>
//      prints the redirect URL on stdout; diagnostics on stderr; exit 1 on failure.
//      node browser.js --device <verificationUri> <userCode> <username> <password>
//      prints the text of the page after Allow (VALET_E2E_DECISION=deny clicks Deny).
//      The password may be given as "-" to read it from $VALET_E2E_PASSWORD.
//
// Env: CHROMIUM_PATH (default /usr/bin/chromium), VALET_E2E_BROWSER_TIMEOUT_MS (default 60000),
//      VALET_E2E_ARTIFACTS (default <repo>/e2e/artifacts), VALET_E2E_LABEL (screenshot prefix).

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--no-proxy-server',
];

const ARTIFACTS = process.env.VALET_E2E_ARTIFACTS || path.resolve(__dirname, '..', 'artifacts');

function log(...args) {
  if (process.env.VALET_E2E_QUIET) return;
  process.stderr.write(`[browser] ${args.join(' ')}\n`);
}

function safeLabel(s) {
  return String(s).replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60);
}

async function screenshot(page, label, what) {
  try {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${label}-${what}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
    log(`screenshot ${file}`);
  } catch (e) {
    log(`screenshot ${what} failed: ${e.message}`);
  }
}

async function bodyText(page) {
  try {
    const t = await page.locator('body').innerText({ timeout: 2000 });
    return t.replace(/\s+/g, ' ').trim().slice(0, 600);
  } catch {
    return '<no body>';
  }
}

async function visible(locator) {
  try {
    return (await locator.count()) > 0 && (await locator.first().isVisible());
  } catch {
    return false;
  }
}

/**
 * @param {string} authUrl  full /services/oauth2/authorize URL built by the client library
 * @param {{username: string, password: string, redirectPrefix: string, label?: string,
 *          timeoutMs?: number, expectConsent?: boolean, decision?: 'allow'|'deny'}} opts
 * @returns {Promise<string>} the URL the server redirected the browser to (starts with redirectPrefix)
 */
async function authorizeInBrowser(authUrl, opts) {
  const { username, password, redirectPrefix } = opts || {};
  if (!authUrl || !username || !password || !redirectPrefix) {
    throw new Error('authorizeInBrowser(authUrl, {username, password, redirectPrefix}) needs all four');
  }
  const timeoutMs = Number(opts.timeoutMs || process.env.VALET_E2E_BROWSER_TIMEOUT_MS || 60000);
  const prefix = process.env.VALET_E2E_BACKEND ? `${process.env.VALET_E2E_BACKEND}-` : '';
  const label = safeLabel(prefix + (opts.label || process.env.VALET_E2E_LABEL || `auth-${Date.now()}`));
  const decision = opts.decision || 'allow';
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1000, deadline - Date.now());

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  const visited = [];
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);

    let resolveRedirect;
    const redirected = new Promise((r) => { resolveRedirect = r; });
    let redirectUrl = null;
    const capture = (url) => {
      if (redirectUrl === null && url.startsWith(redirectPrefix)) {
        redirectUrl = url;
        log(`captured redirect ${url}`);
        resolveRedirect(url);
      }
    };
    // The callback host is not listening: answer the navigation ourselves so the page settles.
    await page.route((u) => u.href.startsWith(redirectPrefix), async (route) => {
      capture(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'valet-e2e: redirect captured' });
    });
    // Belt and braces: a redirect the router did not see still shows up as a request.
    page.on('request', (req) => {
      if (req.isNavigationRequest()) visited.push(`${req.method()} ${req.url()}`);
      capture(req.url());
    });

    log(`goto ${authUrl}`);
    await Promise.race([
      page.goto(authUrl, { timeout: remaining(), waitUntil: 'load' }).catch((e) => {
        if (redirectUrl === null) throw e;
      }),
      redirected,
    ]);

    let loggedIn = false;
    let consented = false;
    for (let step = 0; step < 8 && redirectUrl === null; step++) {
      if (Date.now() > deadline) break;
      const userField = page.locator('input[name="username"]');
      const passField = page.locator('input[name="password"]');
      const allow = page.locator(`button[name="decision"][value="${decision}"], input[name="decision"][value="${decision}"]`);

      let action;
      if (await visible(passField)) {
        if (loggedIn) {
          await screenshot(page, label, 'login-failed');
          throw new Error(`login form shown again after submitting credentials (bad password?): ${await bodyText(page)}`);
        }
        if (await visible(userField)) await userField.first().fill(username);
        await passField.first().fill(password);
        await screenshot(page, label, 'login');
        let submit = page.locator('button:has-text("Log In"), input[type="submit"][value="Log In"]');
        if (!(await visible(submit))) submit = page.locator('form button[type="submit"], form input[type="submit"], form button:not([type])');
        action = () => submit.first().click({ timeout: 15000 });
        loggedIn = true;
        log('submitting login form');
      } else if (await visible(allow)) {
        if (consented) {
          await screenshot(page, label, 'consent-again');
          throw new Error(`consent page shown again after clicking ${decision}: ${await bodyText(page)}`);
        }
        await screenshot(page, label, 'consent');
        action = () => allow.first().click({ timeout: 15000 });
        consented = true;
        log(`clicking ${decision}`);
      } else {
        // Neither a form we know nor the redirect: give a slow page one more moment, then fail.
        const settled = await Promise.race([
          redirected.then(() => true),
          page.waitForLoadState('load', { timeout: 3000 }).then(() => false, () => false),
        ]);
        if (settled || redirectUrl !== null) break;
        if (await visible(passField) || await visible(allow)) continue;
        await screenshot(page, label, 'unexpected');
        throw new Error(`unexpected page at ${page.url()} (no login form, no consent button, no redirect): ${await bodyText(page)}`);
      }

      const loaded = page.waitForEvent('load', { timeout: remaining() });
      await action();
      await Promise.race([redirected, loaded]).catch((e) => {
        if (redirectUrl === null) throw e;
      });
    }

    if (redirectUrl === null) {
      await screenshot(page, label, 'no-redirect');
      throw new Error(`no redirect to ${redirectPrefix} within ${timeoutMs} ms; last page ${page.url()}: ${await bodyText(page)}`);
    }
    if (opts.expectConsent && !consented) log('note: no consent page was shown');
    return redirectUrl;
  } catch (e) {
    e.message += `\n  navigations: ${visited.join(' -> ') || '(none)'}`;
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

/**
 * The person's side of a device flow: open the verification page (`/setup/connect`), log in,
 * enter the user code, click "Connect", then Allow (or opts.decision = 'deny') on the approval
 * page. Resolves with the text of the page shown afterwards (Valet's "Your device is connected."
 * notice); rejects with the page text and a screenshot when an error is shown or a step is missing.
 *
 * @param {string} verificationUri  `verification_uri` (or `verification_uri_complete`) from the device authorization
 * @param {string} userCode         `user_code` from the device authorization (typed into the page)
 * @param {{username: string, password: string, label?: string, timeoutMs?: number, decision?: 'allow'|'deny'}} opts
 * @returns {Promise<string>}
 */
async function approveDeviceInBrowser(verificationUri, userCode, opts) {
  const { username, password } = opts || {};
  if (!verificationUri || !userCode || !username || !password) {
    throw new Error('approveDeviceInBrowser(verificationUri, userCode, {username, password}) needs all four');
  }
  const timeoutMs = Number(opts.timeoutMs || process.env.VALET_E2E_BROWSER_TIMEOUT_MS || 60000);
  const prefix = process.env.VALET_E2E_BACKEND ? `${process.env.VALET_E2E_BACKEND}-` : '';
  const label = safeLabel(prefix + (opts.label || process.env.VALET_E2E_LABEL || `device-${Date.now()}`));
  const decision = opts.decision || 'allow';
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1000, deadline - Date.now());

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  const visited = [];
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('request', (req) => { if (req.isNavigationRequest()) visited.push(`${req.method()} ${req.url()}`); });
    const submitAndWait = async (click) => {
      const loaded = page.waitForEvent('load', { timeout: remaining() });
      await click();
      await loaded;
    };
    const fail = async (what, msg) => {
      await screenshot(page, label, what);
      throw new Error(`${msg} at ${page.url()}: ${await bodyText(page)}`);
    };

    log(`goto ${verificationUri}`);
    await page.goto(verificationUri, { timeout: remaining(), waitUntil: 'load' });

    // 1. Login (Valet sends a person without a session to /login?continue=/setup/connect...).
    const passField = page.locator('input[name="password"]');
    if (await visible(passField)) {
      const userField = page.locator('input[name="username"]');
      if (await visible(userField)) await userField.first().fill(username);
      await passField.first().fill(password);
      await screenshot(page, label, 'login');
      log('submitting login form');
      await submitAndWait(() => page.locator('form button[type="submit"], form input[type="submit"]').first().click());
      if (await visible(page.locator('input[name="password"]'))) await fail('login-failed', 'login form shown again (bad password?)');
    }

    // 2. The code page: type the user code, "Connect".
    const codeField = page.locator('input[name="user_code"]:not([type="hidden"])');
    if (!(await visible(codeField))) await fail('unexpected', 'no user_code field on the verification page');
    await codeField.first().fill(userCode);
    await screenshot(page, label, 'code');
    log(`entering user code ${userCode}`);
    await submitAndWait(() => page.locator('form button[type="submit"]').first().click());

    // 3. The approval page: Allow / Deny.
    const button = page.locator(`button[name="decision"][value="${decision}"]`);
    if (!(await visible(button))) await fail('no-approval', `no ${decision} button after entering the code`);
    await screenshot(page, label, 'consent');
    log(`clicking ${decision}`);
    await submitAndWait(() => button.first().click());

    const text = await bodyText(page);
    if (await visible(page.locator('[role="alert"], .alert-error'))) await fail('device-error', 'error after the decision');
    await screenshot(page, label, 'done');
    return text;
  } catch (e) {
    e.message += `\n  navigations: ${visited.join(' -> ') || '(none)'}`;
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

module.exports = { authorizeInBrowser, approveDeviceInBrowser, CHROMIUM_ARGS };

if (require.main === module) {
  const args = process.argv.slice(2);
  const device = args[0] === '--device';
  if (device) args.shift();
  const [target, a2, a3, a4] = args;
  // authorize: <authUrl> <username> <password|-> <redirectPrefix>
  // --device:  <verificationUri> <userCode> <username> <password|->
  const [username, passwordArg] = device ? [a3, a4] : [a2, a3];
  const password = passwordArg === '-' ? process.env.VALET_E2E_PASSWORD : passwordArg;
  const redirectPrefix = device ? null : a4;
  if (!target || !username || !password || (device ? !a2 : !redirectPrefix)) {
    process.stderr.write('usage: node browser.js <authUrl> <username> <password|-> <redirectPrefix>\n'
      + '       node browser.js --device <verificationUri> <userCode> <username> <password|->\n');
    process.exit(2);
  }
  const hardStop = setTimeout(() => {
    process.stderr.write('[browser] hard timeout\n');
    process.exit(1);
  }, Number(process.env.VALET_E2E_BROWSER_TIMEOUT_MS || 60000) + 30000);
  hardStop.unref();
  const run = device
    ? approveDeviceInBrowser(target, a2, { username, password, decision: process.env.VALET_E2E_DECISION || 'allow' })
    : authorizeInBrowser(target, { username, password, redirectPrefix });
  run
    .then((out) => {
      process.stdout.write(`${out}\n`);
      process.exit(0);
    })
    .catch((e) => {
      process.stderr.write(`[browser] FAILED: ${e.stack || e.message}\n`);
      process.exit(1);
    });
}
