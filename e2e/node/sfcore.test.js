'use strict';
// @salesforce/core (the library under the `sf` CLI; unmodified, from npm) against a running Valet:
// JWT bearer login with AuthInfo.create and the (Salesforce-flavoured) device flow with
// DeviceOauthService, the person's side approved in headless chromium at /setup/connect.
//
// Run by e2e/run.sh with:
//   VALET_BASE, VALET_E2E_USERNAME, VALET_E2E_PASSWORD
//   VALET_E2E_SFCORE_CLIENT_ID      app with enable_jwt_bearer_flow and jwt_certificate_pem set
//   VALET_E2E_SFCORE_KEY_FILE       the PEM private key of that certificate
//   VALET_E2E_DEVICE_CLIENT_ID      default PlatformCLI (pre-registered, device flow enabled)
//   VALET_E2E_REDIRECT_URI          default http://localhost:1717/OauthRedirect
//
// @salesforce/core keeps its state in $HOME/.sfdx and $HOME/.sf: this file points HOME at a fresh
// temp dir before loading it. The REST calls it makes after a login (sobjects/User/<id>, the
// ScratchOrgInfo probe, /services/data, the Organization query) are recorded with Valet's status.
// Nothing may leave the machine: the library's HTTP client (jsforce-node's undici dispatcher) is
// replaced by one that only connects to loopback and answers requests to *.salesforce.com itself
// (the JWT flow would otherwise re-send the assertion there when Valet refuses it).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const SF_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'valet-e2e-sfcore-'));
process.env.HOME = SF_HOME;
process.env.SF_USE_GENERIC_UNIX_KEYCHAIN = 'true';
process.env.SF_DISABLE_TELEMETRY = 'true';
process.env.SF_DISABLE_LOG_FILE = 'true';
process.env.SFDX_DISABLE_LOG_FILE = 'true';
process.env.SF_LOG_LEVEL = process.env.SF_LOG_LEVEL || 'warn';

// jsforce-node (the HTTP layer of @salesforce/core) and the undici copy it resolves (the one the
// package.json override pins), so that the dispatcher below is of its own kind.
const JSFORCE_NODE = path.dirname(require.resolve('@jsforce/jsforce-node/package.json'));
const undici = require(require.resolve('undici', { paths: [JSFORCE_NODE] }));
const { setDispatcher } = require(path.join(JSFORCE_NODE, 'lib', 'request'));
const { AuthInfo, AuthRemover, Connection, DeviceOauthService } = require('@salesforce/core');
const { authorizeInBrowser, approveDeviceInBrowser } = require('./browser');

const BASE = (process.env.VALET_BASE || '').replace(/\/+$/, '');
const USERNAME = process.env.VALET_E2E_USERNAME;
const PASSWORD = process.env.VALET_E2E_PASSWORD;
const JWT_CLIENT_ID = process.env.VALET_E2E_SFCORE_CLIENT_ID;
const KEY_FILE = process.env.VALET_E2E_SFCORE_KEY_FILE;
const DEVICE_CLIENT_ID = process.env.VALET_E2E_DEVICE_CLIENT_ID || 'PlatformCLI';
const REDIRECT_URI = process.env.VALET_E2E_REDIRECT_URI || 'http://localhost:1717/OauthRedirect';
const TEST_TIMEOUT = 120000;

// --- the loopback-only HTTP client ----------------------------------------------------------
const requests = []; // "METHOD origin path" of every request @salesforce/core made
const entries = []; // the same as { method, origin, path, status }
const outbound = []; // requests that would have left the machine
const mock = new undici.MockAgent({ agent: new undici.Agent({ connect: { allowH2: false } }) });
mock.disableNetConnect();
mock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));
for (const origin of ['https://login.salesforce.com', 'https://test.salesforce.com']) {
  mock.get(origin).intercept({ path: () => true, method: () => true }).reply((opts) => {
    outbound.push(`${opts.method} ${origin}${opts.path}`);
    return { statusCode: 400, data: { error: 'invalid_grant', error_description: 'valet-e2e: no request leaves the machine' } };
  }).persist();
}
// Fills in entry.status when the response headers arrive (either undici handler style).
function recordStatus(handler, entry) {
  return new Proxy(handler, {
    get(target, prop) {
      if (prop === 'onHeaders' && typeof target.onHeaders === 'function') {
        return (status, ...rest) => { entry.status = status; return target.onHeaders(status, ...rest); };
      }
      if (prop === 'onResponseStart' && typeof target.onResponseStart === 'function') {
        return (controller, status, ...rest) => { entry.status = status; return target.onResponseStart(controller, status, ...rest); };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
const recorder = mock.compose((dispatch) => (opts, handler) => {
  requests.push(`${opts.method} ${opts.origin}${opts.path}`);
  const entry = { method: opts.method, origin: String(opts.origin).replace(/\/+$/, ''), path: opts.path, status: null };
  entries.push(entry);
  return dispatch(opts, recordStatus(handler, entry));
});
setDispatcher(recorder);

function requireEnv(extra = {}) {
  const missing = Object.entries({ VALET_BASE: BASE, VALET_E2E_USERNAME: USERNAME, VALET_E2E_PASSWORD: PASSWORD, ...extra })
    .filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) throw new Error(`missing env: ${missing.join(', ')} (run through e2e/run.sh)`);
}

// The token must work at Valet's userinfo endpoint (plain fetch: not through the library).
async function userinfo(instanceUrl, accessToken) {
  const r = await fetch(`${instanceUrl}/services/oauth2/userinfo`, { headers: { Authorization: `Bearer ${accessToken}` } });
  const text = await r.text();
  assert.equal(r.status, 200, `userinfo: ${r.status} ${text.slice(0, 300)}`);
  const ui = JSON.parse(text);
  assert.equal(ui.preferred_username, USERNAME);
  assert.match(ui.user_id, /^005/);
  assert.match(ui.organization_id, /^00D/);
  return ui;
}

function since(mark) {
  return requests.slice(mark).join(', ');
}

function logRequests(t, mark) {
  for (const e of entries.slice(mark)) t.diagnostic(`request: ${e.method} ${e.origin}${e.path} -> ${e.status}`);
}

after(() => {
  fs.rmSync(SF_HOME, { recursive: true, force: true });
});

describe('@salesforce/core: JWT bearer (AuthInfo.create with privateKeyFile)', { timeout: TEST_TIMEOUT * 3 }, () => {
  const st = {};
  before(() => requireEnv({ VALET_E2E_SFCORE_CLIENT_ID: JWT_CLIENT_ID, VALET_E2E_SFCORE_KEY_FILE: KEY_FILE }));

  it('the user approves the app once (web server flow consent in the browser)', { timeout: TEST_TIMEOUT }, async () => {
    const state = crypto.randomBytes(6).toString('hex');
    const u = new URL(`${BASE}/services/oauth2/authorize`);
    u.search = new URLSearchParams({
      response_type: 'code', client_id: JWT_CLIENT_ID, redirect_uri: REDIRECT_URI, scope: 'api refresh_token web', state,
    }).toString();
    const redirect = new URL(await authorizeInBrowser(u.toString(), {
      username: USERNAME, password: PASSWORD, redirectPrefix: REDIRECT_URI, label: 'sfcore-jwt-consent',
    }));
    assert.equal(redirect.searchParams.get('error'), null, redirect.toString());
    assert.equal(redirect.searchParams.get('state'), state);
    assert.ok(redirect.searchParams.get('code'), redirect.toString());
  });

  it('AuthInfo.create logs in with a JWT (exp in ms, aud = loginUrl) and nothing leaves the machine', { timeout: TEST_TIMEOUT }, async (t) => {
    const mark = requests.length;
    let authInfo;
    try {
      authInfo = await AuthInfo.create({
        username: USERNAME,
        oauth2Options: { loginUrl: BASE, clientId: JWT_CLIENT_ID, privateKeyFile: KEY_FILE },
      });
    } finally {
      logRequests(t, mark);
    }
    assert.deepEqual(outbound, [], 'the first JWT try (aud = loginUrl) must succeed, so no assertion goes to *.salesforce.com');
    const tokenPosts = requests.slice(mark).filter((r) => r.startsWith(`POST ${BASE}/services/oauth2/token`));
    assert.equal(tokenPosts.length, 1, `one token request expected, got: ${since(mark)}`);
    // The post-login REST calls: the Dev Hub probe is refused (INVALID_TYPE: not a Dev Hub), the
    // versions list and the Organization query work.
    const status = (p) => entries.slice(mark).find((e) => e.origin === BASE && decodeURIComponent(e.path).startsWith(p))?.status;
    assert.equal(status('/services/data/v51.0/query?q=SELECT Id FROM ScratchOrgInfo'), 400, since(mark));
    const orgQuery = entries.slice(mark).find((e) => /FROM Organization$/.test(decodeURIComponent(e.path)));
    if (orgQuery) assert.equal(orgQuery.status, 200, since(mark));
    const f = authInfo.getFields(true);
    assert.equal(f.username, USERNAME);
    assert.equal(f.loginUrl, BASE);
    assert.equal(f.instanceUrl, BASE, 'instance_url (bare origin, resolvable)');
    assert.match(f.orgId, /^00D/);
    assert.ok(f.accessToken, 'no access token');
    assert.equal(f.refreshToken, undefined, 'JWT bearer issues no refresh token');
    assert.notEqual(f.isDevHub, true, 'not a Dev Hub');
    Object.assign(st, { authInfo, fields: f });
  });

  it('the JWT access token works at userinfo', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.fields, 'precondition: JWT login failed');
    const ui = await userinfo(st.fields.instanceUrl, st.fields.accessToken);
    assert.equal(ui.organization_id.slice(0, 15), st.fields.orgId.slice(0, 15));
  });

  it('after logout (AuthRemover), a second JWT login gives a new working token', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.fields, 'precondition: JWT login failed');
    // AuthInfo.create refuses to overwrite a saved auth file for the username (the org lookups
    // after login may have saved one): log out first, as `sf org logout` does.
    await (await AuthRemover.create()).removeAuth(USERNAME);
    const again = await AuthInfo.create({
      username: USERNAME,
      oauth2Options: { loginUrl: BASE, clientId: JWT_CLIENT_ID, privateKeyFile: KEY_FILE },
    });
    const f = again.getFields(true);
    assert.notEqual(f.accessToken, st.fields.accessToken);
    await userinfo(f.instanceUrl, f.accessToken);
    assert.deepEqual(outbound, []);
  });
});

describe(`@salesforce/core: device flow (DeviceOauthService, ${DEVICE_CLIENT_ID})`, { timeout: TEST_TIMEOUT * 3 }, () => {
  const st = {};
  before(() => requireEnv());

  it('requestDeviceLogin, approval at /setup/connect in the browser, awaitDeviceApproval', { timeout: TEST_TIMEOUT }, async (t) => {
    const mark = requests.length;
    const service = await DeviceOauthService.create({ loginUrl: BASE, clientId: DEVICE_CLIENT_ID });
    const login = await service.requestDeviceLogin();
    for (const k of ['device_code', 'user_code', 'verification_uri', 'interval']) assert.ok(login[k], `device login lacks ${k}`);
    assert.equal(login.verification_uri, `${BASE}/setup/connect`);
    assert.equal(typeof login.interval, 'number');
    // The library polls every `interval` seconds while the person approves.
    const polling = service.awaitDeviceApproval(login);
    const page = await approveDeviceInBrowser(login.verification_uri, login.user_code, {
      username: USERNAME, password: PASSWORD, label: 'sfcore-device',
    });
    assert.match(page, /connected/i, page);
    const approval = await polling;
    logRequests(t, mark);
    assert.ok(approval, 'awaitDeviceApproval gave nothing');
    for (const k of ['access_token', 'refresh_token', 'instance_url', 'id']) assert.ok(approval[k], `approval lacks ${k}`);
    assert.equal(approval.instance_url, BASE);
    assert.deepEqual(outbound, []);
    Object.assign(st, { service, approval });
  });

  it('the device-flow access token works at userinfo', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.approval, 'precondition: device flow failed');
    const ui = await userinfo(st.approval.instance_url, st.approval.access_token);
    assert.equal(st.approval.id.split('/').pop(), ui.user_id);
  });

  // authorizeAndSave runs a refresh_token grant at instance_url, then userinfo, then
  // GET /services/data/v51.0/sobjects/User/<id> (for the Username) and the Dev Hub probe
  // (a ScratchOrgInfo query: any status >= 400 means "not a Dev Hub"), and saves the auth file.
  it('authorizeAndSave: refresh at instance_url, userinfo, sobjects/User/<id>, the ScratchOrgInfo probe', { timeout: TEST_TIMEOUT }, async (t) => {
    assert.ok(st.approval, 'precondition: device flow failed');
    // The JWT tests above logged this username in (and out); start from no saved auth file.
    await (await AuthRemover.create()).removeAuth(USERNAME);
    const mark = requests.length;
    let authInfo;
    try {
      authInfo = await st.service.authorizeAndSave(st.approval);
    } finally {
      logRequests(t, mark);
    }
    assert.equal(authInfo.getUsername(), USERNAME, 'the username comes from sobjects/User/<id>');
    const f = authInfo.getFields(true);
    const [orgId, userId] = st.approval.id.split('/').slice(-2);
    assert.equal(f.instanceUrl, BASE);
    assert.equal(f.loginUrl, BASE);
    assert.equal(f.orgId.slice(0, 15), orgId.slice(0, 15));
    assert.equal(f.clientId, DEVICE_CLIENT_ID);
    assert.ok(f.accessToken && f.refreshToken, 'access and refresh token saved');
    assert.notEqual(f.isDevHub, true, 'the ScratchOrgInfo probe must fail (INVALID_TYPE): not a Dev Hub');
    const made = entries.slice(mark).map((e) => [e.method, e.origin === BASE ? '' : e.origin, decodeURIComponent(e.path), e.status]);
    const has = (method, p, status) => made.some(([m, o, pp, s]) => m === method && o === '' && pp === p && s === status);
    assert.ok(has('POST', '/services/oauth2/token', 200), `no refresh at instance_url: ${since(mark)}`);
    assert.ok(has('GET', '/services/oauth2/userinfo', 200), since(mark));
    assert.ok(has('GET', `/services/data/v51.0/sobjects/User/${userId}`, 200), since(mark));
    assert.ok(has('GET', '/services/data/v51.0/query?q=SELECT Id FROM ScratchOrgInfo limit 1', 400), since(mark));
    assert.deepEqual(outbound, []);
    // Saved: a fresh AuthInfo for the username reads the file.
    const loaded = await AuthInfo.create({ username: USERNAME });
    assert.equal(loaded.getFields().orgId, f.orgId);
    Object.assign(st, { authInfo, userId, orgId });
  });

  it('Connection.create({ authInfo }): the Organization query, singleRecordQuery, CRUD', { timeout: TEST_TIMEOUT }, async (t) => {
    assert.ok(st.authInfo, 'precondition: authorizeAndSave failed');
    const mark = requests.length;
    try {
      const conn = await Connection.create({ authInfo: st.authInfo });
      // Connection.create picks the highest version from GET /services/data.
      assert.equal(conn.getApiVersion(), '62.0');
      const org = await conn.query('SELECT Id, Name FROM Organization');
      assert.equal(org.totalSize, 1);
      assert.equal(org.records[0].Id.slice(0, 15), st.orgId.slice(0, 15));
      assert.ok(org.records[0].Name, 'organization name');
      const info = await conn.singleRecordQuery(
        'SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization');
      assert.equal(info.Name, org.records[0].Name);
      assert.equal(typeof info.IsSandbox, 'boolean');
      const user = await conn.singleRecordQuery(`SELECT Id, Username FROM User WHERE Id = '${st.userId}'`);
      assert.equal(user.Username, USERNAME);
      await assert.rejects(conn.singleRecordQuery("SELECT Id FROM User WHERE Username = 'nobody@valet.invalid'"),
        (e) => e.name === 'SingleRecordQuery_NoRecords');
      const created = await conn.sobject('Account').create({ Name: `sf-core ${crypto.randomBytes(3).toString('hex')}` });
      assert.equal(created.success, true);
      const got = await conn.sobject('Account').retrieve(created.id);
      assert.equal(got.Id, created.id);
      assert.equal((await conn.sobject('Account').destroy(created.id)).success, true);
    } finally {
      logRequests(t, mark);
    }
    assert.deepEqual(outbound, []);
  });
});
