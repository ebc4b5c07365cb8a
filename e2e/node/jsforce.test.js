'use strict';
// jsforce (unmodified, from npm) against a running Valet: the web server flow with PKCE for a
// confidential app, identity, refresh, revocation; and the sf-CLI-style public client flow.
//
// Run by e2e/run.sh with:
//   VALET_BASE                    e.g. http://127.0.0.1:PORT (loginUrl and expected instance_url)
//   VALET_E2E_USERNAME / VALET_E2E_PASSWORD
//   VALET_E2E_CLIENT_ID / VALET_E2E_CLIENT_SECRET   confidential app, callback = redirect URI below
//   VALET_E2E_PUBLIC_CLIENT_IDS   space-separated public clients to run the sf-style flow with
//                                 (default "PlatformCLI", the pre-registered sf CLI app)
//   VALET_E2E_REDIRECT_URI        default http://localhost:1717/OauthRedirect

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const jsforce = require('jsforce');
const { authorizeInBrowser } = require('./browser');

const BASE = (process.env.VALET_BASE || '').replace(/\/+$/, '');
const USERNAME = process.env.VALET_E2E_USERNAME;
const PASSWORD = process.env.VALET_E2E_PASSWORD;
const CLIENT_ID = process.env.VALET_E2E_CLIENT_ID;
const CLIENT_SECRET = process.env.VALET_E2E_CLIENT_SECRET;
const PUBLIC_CLIENT_IDS = (process.env.VALET_E2E_PUBLIC_CLIENT_IDS || 'PlatformCLI').split(/\s+/).filter(Boolean);
const REDIRECT_URI = process.env.VALET_E2E_REDIRECT_URI || 'http://localhost:1717/OauthRedirect';
const API_VERSION = '62.0';
const TEST_TIMEOUT = 120000;

function requireEnv() {
  const missing = Object.entries({ VALET_BASE: BASE, VALET_E2E_USERNAME: USERNAME, VALET_E2E_PASSWORD: PASSWORD })
    .filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) throw new Error(`missing env: ${missing.join(', ')} (run through e2e/run.sh)`);
}

// Browser step: returns the authorization code after checking state and the absence of error.
async function browserCode(authUrl, state, label) {
  const redirect = await authorizeInBrowser(authUrl, {
    username: USERNAME, password: PASSWORD, redirectPrefix: REDIRECT_URI, label,
  });
  const u = new URL(redirect);
  assert.equal(u.searchParams.get('error'), null,
    `authorize redirected with error=${u.searchParams.get('error')} ${u.searchParams.get('error_description') || ''}`);
  assert.equal(u.searchParams.get('state'), state, 'state must come back unchanged');
  const code = u.searchParams.get('code');
  assert.ok(code, `no code in redirect ${redirect}`);
  return code;
}

// A connection that only holds a token: no oauth2 client, so no automatic refresh can hide a
// rejected token (jsforce refreshes on any 401).
function tokenOnlyConnection(instanceUrl, accessToken, userInfo) {
  const c = new jsforce.Connection({ instanceUrl, accessToken, version: API_VERSION });
  c.userInfo = { ...userInfo };
  return c;
}

function checkUserInfo(userInfo) {
  assert.match(userInfo.id, /^005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$/, `user id ${userInfo.id}`);
  assert.match(userInfo.organizationId, /^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$/, `org id ${userInfo.organizationId}`);
  assert.ok(userInfo.url, 'identity URL (token response `id`) missing');
  const idUrl = new URL(userInfo.url);
  assert.equal(idUrl.pathname, `/id/${userInfo.organizationId}/${userInfo.id}`, `identity URL ${userInfo.url}`);
}

function checkInstanceUrl(instanceUrl) {
  assert.ok(instanceUrl, 'instance_url missing');
  assert.equal(instanceUrl, new URL(instanceUrl).origin, `instance_url must be a bare origin, got ${instanceUrl}`);
}

async function identityOk(conn, expect) {
  const ident = await conn.identity();
  assert.equal(ident.username, USERNAME);
  assert.equal(ident.user_id, expect.id);
  assert.equal(ident.organization_id, expect.organizationId);
  return ident;
}

async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail(`${what}: expected a failure, got success`);
}

describe('jsforce: confidential app, web server flow with PKCE', { timeout: TEST_TIMEOUT * 4 }, () => {
  const st = {};
  let oauth2;

  before(() => {
    requireEnv();
    assert.ok(CLIENT_ID && CLIENT_SECRET, 'VALET_E2E_CLIENT_ID / VALET_E2E_CLIENT_SECRET not set');
    oauth2 = new jsforce.OAuth2({
      loginUrl: BASE, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI, useVerifier: true,
    });
  });

  it('authorize (login + consent in the browser) and exchange the code', { timeout: TEST_TIMEOUT }, async () => {
    const state = crypto.randomBytes(6).toString('hex');
    const authUrl = oauth2.getAuthorizationUrl({ scope: 'api refresh_token openid id', state, nonce: crypto.randomUUID() });
    const u = new URL(authUrl);
    assert.equal(u.origin + u.pathname, `${BASE}/services/oauth2/authorize`);
    assert.ok(u.searchParams.get('code_challenge'), 'jsforce should send a PKCE challenge');
    assert.equal(u.searchParams.get('code_challenge_method'), null, 'jsforce sends no code_challenge_method (server must assume S256)');

    const code = await browserCode(authUrl, state, 'jsforce-confidential');
    const conn = new jsforce.Connection({ oauth2, version: API_VERSION });
    const userInfo = await conn.authorize(code);
    checkUserInfo(userInfo);
    checkInstanceUrl(conn.instanceUrl);
    assert.ok(conn.accessToken, 'no access token');
    assert.ok(conn.refreshToken, 'no refresh token although refresh_token scope was granted');
    Object.assign(st, { conn, userInfo, at1: conn.accessToken, rt: conn.refreshToken, instanceUrl: conn.instanceUrl });
  });

  it('identity() returns the user', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.conn, 'precondition: authorize step failed');
    const ident = await identityOk(st.conn, st.userInfo);
    assert.equal(ident.id, st.userInfo.url);
  });

  it('a replayed authorization code is refused', { timeout: TEST_TIMEOUT }, async () => {
    // Build a fresh flow to get a code, use it once, then again.
    const state = crypto.randomBytes(6).toString('hex');
    const authUrl = oauth2.getAuthorizationUrl({ scope: 'api', state });
    const code = await browserCode(authUrl, state, 'jsforce-replay');
    const res = await oauth2.requestToken(code);
    assert.ok(res.access_token);
    const err = await rejects(oauth2.requestToken(code), 'second use of the same code');
    assert.match(`${err.name} ${err.message}`, /invalid_grant/);
  });

  it('refreshToken() gives a new access token that works on identity', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.rt, 'precondition: authorize step failed');
    const res = await oauth2.refreshToken(st.rt);
    assert.ok(res.access_token, 'refresh response has no access_token');
    assert.notEqual(res.access_token, st.at1, 'refresh must mint a new access token');
    assert.ok(res.id, 'refresh response must carry `id` (jsforce parses it)');
    assert.equal(res.id, st.userInfo.url);
    checkInstanceUrl(res.instance_url);
    assert.match(String(res.token_type), /^bearer$/i);
    st.at2 = res.access_token;
    await identityOk(tokenOnlyConnection(res.instance_url, st.at2, st.userInfo), st.userInfo);
  });

  it('revokeToken(access token) kills that token only', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.at2, 'precondition: refresh step failed');
    await oauth2.revokeToken(st.at2);
    await rejects(tokenOnlyConnection(st.instanceUrl, st.at2, st.userInfo).identity(), 'identity with revoked access token');
    // Salesforce: revoking an access token revokes only that session.
    await identityOk(tokenOnlyConnection(st.instanceUrl, st.at1, st.userInfo), st.userInfo);
  });

  it('revokeToken(refresh token) kills the refresh token and its access tokens', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.rt, 'precondition: authorize step failed');
    await oauth2.revokeToken(st.rt);
    const err = await rejects(oauth2.refreshToken(st.rt), 'refresh with revoked refresh token');
    assert.match(`${err.name} ${err.message}`, /invalid_grant|expired|revoked|invalid/i);
    await rejects(tokenOnlyConnection(st.instanceUrl, st.at1, st.userInfo).identity(), 'identity with access token of a revoked refresh token');
  });

  it('revokeToken(unknown token) is an error, as on Salesforce', { timeout: TEST_TIMEOUT }, async () => {
    await rejects(oauth2.revokeToken('not-a-real-token'), 'revoke of an unknown token');
  });
});

describe('browser: refusals reach the client the way Salesforce sends them', { timeout: TEST_TIMEOUT * 2 }, () => {
  let oauth2;
  before(() => {
    requireEnv();
    assert.ok(CLIENT_ID && CLIENT_SECRET, 'VALET_E2E_CLIENT_ID / VALET_E2E_CLIENT_SECRET not set');
    oauth2 = new jsforce.OAuth2({
      loginUrl: BASE, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI, useVerifier: true,
    });
  });

  it('Deny on the consent page redirects with error=access_denied and the state', { timeout: TEST_TIMEOUT }, async () => {
    const state = crypto.randomBytes(6).toString('hex');
    // The user already approved this app's scopes above, so force the approval page.
    const authUrl = oauth2.getAuthorizationUrl({ scope: 'api', state, prompt: 'consent' });
    const redirect = await authorizeInBrowser(authUrl, {
      username: USERNAME, password: PASSWORD, redirectPrefix: REDIRECT_URI, label: 'jsforce-deny', decision: 'deny',
    });
    const u = new URL(redirect);
    assert.equal(u.searchParams.get('error'), 'access_denied', redirect);
    assert.equal(u.searchParams.get('state'), state);
    assert.equal(u.searchParams.get('code'), null);
  });

  it('a wrong password is refused on the login page (no redirect)', { timeout: TEST_TIMEOUT }, async () => {
    const state = crypto.randomBytes(6).toString('hex');
    const authUrl = oauth2.getAuthorizationUrl({ scope: 'api', state });
    const err = await rejects(authorizeInBrowser(authUrl, {
      username: USERNAME, password: `${PASSWORD}-wrong`, redirectPrefix: REDIRECT_URI, label: 'jsforce-badpw', timeoutMs: 30000,
    }), 'login with a wrong password');
    assert.match(err.message, /login form shown again/);
  });
});

for (const [i, publicClientId] of PUBLIC_CLIENT_IDS.entries()) {
  describe(`jsforce: public client ${publicClientId} (sf CLI style: no secret, PKCE)`, { timeout: TEST_TIMEOUT * 3 }, () => {
    const st = {};
    let oauth2;

    before(() => {
      requireEnv();
      oauth2 = new jsforce.OAuth2({ loginUrl: BASE, clientId: publicClientId, redirectUri: REDIRECT_URI, useVerifier: true });
    });

    it('authorize and exchange the code without a secret', { timeout: TEST_TIMEOUT }, async () => {
      const state = crypto.randomBytes(6).toString('hex'); // sf CLI: 12 hex characters
      // @salesforce/core's WebOAuthServer asks for exactly this.
      const authUrl = oauth2.getAuthorizationUrl({ state, prompt: 'login', scope: 'refresh_token api web' });
      const code = await browserCode(authUrl, state, `jsforce-public-${i === 0 ? publicClientId : `app${i}`}`);
      const conn = new jsforce.Connection({ oauth2, version: API_VERSION });
      const userInfo = await conn.authorize(code);
      checkUserInfo(userInfo);
      checkInstanceUrl(conn.instanceUrl);
      assert.ok(conn.refreshToken, 'no refresh token');
      Object.assign(st, { conn, userInfo, rt: conn.refreshToken, instanceUrl: conn.instanceUrl });
    });

    it('identity() and userinfo (what sf calls right after login)', { timeout: TEST_TIMEOUT }, async () => {
      assert.ok(st.conn, 'precondition: authorize step failed');
      await identityOk(st.conn, st.userInfo);
      const ui = await st.conn.request({ method: 'GET', url: `${st.instanceUrl}/services/oauth2/userinfo` });
      assert.equal(ui.user_id, st.userInfo.id);
      assert.equal(ui.organization_id, st.userInfo.organizationId);
      assert.equal(ui.preferred_username, USERNAME);
    });

    it('refresh without a secret, then revoke the refresh token', { timeout: TEST_TIMEOUT }, async () => {
      assert.ok(st.rt, 'precondition: authorize step failed');
      const res = await oauth2.refreshToken(st.rt);
      assert.ok(res.access_token);
      assert.equal(res.id, st.userInfo.url);
      await identityOk(tokenOnlyConnection(res.instance_url, res.access_token, st.userInfo), st.userInfo);
      await oauth2.revokeToken(st.rt);
      await rejects(oauth2.refreshToken(st.rt), 'refresh with revoked refresh token');
      await rejects(tokenOnlyConnection(res.instance_url, res.access_token, st.userInfo).identity(),
        'identity with access token of a revoked refresh token');
    });
  });
}
