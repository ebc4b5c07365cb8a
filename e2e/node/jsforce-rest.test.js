'use strict';
// jsforce (unmodified, from npm) on Valet's REST data API (/services/data): the REST root and
// describe calls, CRUD on Account and on Contact (lookup AccountId, parent field in SOQL), the
// errors it maps from Salesforce's error arrays, a query paged past 2000 records (queryMore and
// autoFetch), and the automatic refresh on a 401 INVALID_SESSION_ID, exactly once.
//
// Run by e2e/run.sh with:
//   VALET_BASE, VALET_E2E_USERNAME, VALET_E2E_PASSWORD
//   VALET_E2E_CLIENT_ID / VALET_E2E_CLIENT_SECRET   confidential app (scopes api refresh_token ...)
//   VALET_E2E_REDIRECT_URI        default http://localhost:1717/OauthRedirect
//   VALET_E2E_BULK_ACCOUNTS       accounts created for the paging tests (default 2500, > 2000)
//
// Every HTTP request jsforce makes goes through a recording undici dispatcher (jsforce's own
// setDispatcher), so the tests can assert which requests were made and what Valet answered.

const path = require('node:path');
const crypto = require('node:crypto');
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const jsforce = require('jsforce');
const { authorizeInBrowser } = require('./browser');

const JSFORCE = path.dirname(require.resolve('jsforce/package.json'));
const undici = require(require.resolve('undici', { paths: [JSFORCE] }));
const { setDispatcher } = require(path.join(JSFORCE, 'lib', 'request'));

const BASE = (process.env.VALET_BASE || '').replace(/\/+$/, '');
const USERNAME = process.env.VALET_E2E_USERNAME;
const PASSWORD = process.env.VALET_E2E_PASSWORD;
const CLIENT_ID = process.env.VALET_E2E_CLIENT_ID;
const CLIENT_SECRET = process.env.VALET_E2E_CLIENT_SECRET;
const REDIRECT_URI = process.env.VALET_E2E_REDIRECT_URI || 'http://localhost:1717/OauthRedirect';
const BULK = Number(process.env.VALET_E2E_BULK_ACCOUNTS || 2500);
const CONCURRENCY = 8;
const API_VERSION = '62.0';
const TEST_TIMEOUT = 120000;
const RUN = crypto.randomBytes(4).toString('hex'); // keeps this run's records apart
const ID18 = /^[A-Za-z0-9]{18}$/;

// --- the recording dispatcher -----------------------------------------------------------------
// Entries: { method, path, status } (status filled in when the response headers arrive).
const log = [];
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
setDispatcher(new undici.Agent({ connect: { allowH2: false } }).compose((dispatch) => (opts, handler) => {
  const entry = { method: opts.method, path: opts.path, status: null };
  log.push(entry);
  return dispatch(opts, recordStatus(handler, entry));
}));
const fmt = (entries) => entries.map((e) => `${e.method} ${decodeURIComponent(e.path).slice(0, 140)} -> ${e.status}`).join('\n  ');

function requireEnv() {
  const missing = Object.entries({
    VALET_BASE: BASE, VALET_E2E_USERNAME: USERNAME, VALET_E2E_PASSWORD: PASSWORD,
    VALET_E2E_CLIENT_ID: CLIENT_ID, VALET_E2E_CLIENT_SECRET: CLIENT_SECRET,
  }).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) throw new Error(`missing env: ${missing.join(', ')} (run through e2e/run.sh)`);
}

async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail(`${what}: expected a failure, got success`);
}

// Runs fn(i) for i in [0, n) with at most `limit` calls in flight.
async function pool(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

function checkRecord(rec, type) {
  assert.equal(rec.attributes.type, type);
  assert.match(rec.Id, ID18);
  assert.equal(rec.attributes.url, `/services/data/v${API_VERSION}/sobjects/${type}/${rec.Id}`);
}

describe('jsforce on the REST data API', { timeout: TEST_TIMEOUT * 10 }, () => {
  const st = {};
  let oauth2;

  before(() => {
    requireEnv();
    oauth2 = new jsforce.OAuth2({
      loginUrl: BASE, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI, useVerifier: true,
    });
  });

  it('log in (web server flow); versions, the resources map, describeGlobal, describe', { timeout: TEST_TIMEOUT }, async () => {
    const state = crypto.randomBytes(6).toString('hex');
    const authUrl = oauth2.getAuthorizationUrl({ scope: 'api refresh_token', state });
    const redirect = new URL(await authorizeInBrowser(authUrl, {
      username: USERNAME, password: PASSWORD, redirectPrefix: REDIRECT_URI, label: 'jsforce-rest',
    }));
    assert.equal(redirect.searchParams.get('error'), null, redirect.toString());
    assert.equal(redirect.searchParams.get('state'), state);
    // A connection with an OAuth2 client and a refresh token: jsforce refreshes on any 401.
    const conn = new jsforce.Connection({ oauth2, version: API_VERSION });
    const userInfo = await conn.authorize(redirect.searchParams.get('code'));
    assert.ok(conn.refreshToken, 'no refresh token');
    Object.assign(st, { conn, userInfo });

    const versions = await conn.request('/services/data');
    assert.ok(Array.isArray(versions), 'GET /services/data must be an array');
    assert.ok(versions.some((v) => v.version === API_VERSION && v.url === `/services/data/v${API_VERSION}`), JSON.stringify(versions.slice(-3)));
    const resources = await conn.request(`/services/data/v${API_VERSION}`);
    assert.equal(resources.query, `/services/data/v${API_VERSION}/query`);
    assert.equal(resources.identity, userInfo.url, 'the `identity` resource is the absolute identity URL');

    const global = await conn.describeGlobal();
    const names = global.sobjects.map((s) => s.name);
    for (const n of ['Account', 'Contact', 'User', 'Organization']) assert.ok(names.includes(n), `describeGlobal lacks ${n}`);
    const account = global.sobjects.find((s) => s.name === 'Account');
    assert.equal(account.keyPrefix, '001');

    const contact = await conn.sobject('Contact').describe();
    const accountId = contact.fields.find((f) => f.name === 'AccountId');
    assert.ok(accountId, 'Contact.AccountId missing in describe');
    assert.equal(accountId.type, 'reference');
    assert.deepEqual(accountId.referenceTo, ['Account']);
    assert.equal(accountId.relationshipName, 'Account');
  });

  it('Account: create, retrieve (18- and 15-character ID), update, destroy, queryAll sees the deleted row', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.conn, 'precondition: login failed');
    const Account = st.conn.sobject('Account');
    const name = `jsforce-crud-${RUN}`;
    const created = await Account.create({ Name: name, Industry: 'Banking' });
    assert.deepEqual(Object.keys(created).sort(), ['errors', 'id', 'success']);
    assert.equal(created.success, true);
    assert.deepEqual(created.errors, []);
    assert.match(created.id, /^001[A-Za-z0-9]{15}$/);

    const rec = await Account.retrieve(created.id);
    checkRecord(rec, 'Account');
    assert.equal(rec.Id, created.id);
    assert.equal(rec.Name, name);
    assert.equal(rec.Industry, 'Banking');
    assert.equal(rec.OwnerId, st.userInfo.id, 'the owner is the caller');
    assert.equal((await Account.retrieve(created.id.slice(0, 15))).Id, created.id, '15-character IDs in, 18 out');

    const updated = await Account.update({ Id: created.id, Name: `${name}-2`, Industry: null });
    assert.deepEqual(updated, { id: created.id, success: true, errors: [] }, 'jsforce turns the 204 into a save result');
    const again = await Account.retrieve(created.id);
    assert.equal(again.Name, `${name}-2`);
    assert.equal(again.Industry, null);

    const found = await Account.find({ Name: `${name}-2` }, ['Id', 'Name']);
    assert.deepEqual(found.map((r) => r.Id), [created.id]);

    const destroyed = await Account.destroy(created.id);
    assert.deepEqual(destroyed, { id: created.id, success: true, errors: [] });
    const gone = await rejects(Account.retrieve(created.id), 'retrieve of a deleted record');
    assert.equal(gone.errorCode, 'ENTITY_IS_DELETED', `${gone.errorCode}: ${gone.message}`);
    const live = await st.conn.query(`SELECT Id FROM Account WHERE Id = '${created.id}'`);
    assert.equal(live.totalSize, 0);
    const all = await st.conn.query(`SELECT Id, IsDeleted FROM Account WHERE Id = '${created.id}'`).scanAll(true); // GET …/queryAll
    assert.equal(all.totalSize, 1);
    assert.equal(all.records[0].IsDeleted, true);
  });

  it('errors come back as Salesforce error arrays and jsforce maps them', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.conn, 'precondition: login failed');
    const Account = st.conn.sobject('Account');
    let e = await rejects(Account.create({ Name: 'x', NoSuchField__c: 1 }), 'create with an unknown field');
    assert.equal(e.errorCode, 'INVALID_FIELD', e.message);
    e = await rejects(Account.create({ Industry: 'Banking' }), 'create without Name');
    assert.equal(e.errorCode, 'REQUIRED_FIELD_MISSING', e.message);
    e = await rejects(st.conn.query('SELECT Id FROM'), 'malformed SOQL');
    assert.equal(e.errorCode, 'MALFORMED_QUERY', e.message);
    e = await rejects(st.conn.query('SELECT Id FROM NoSuchObject'), 'unknown object');
    assert.equal(e.errorCode, 'INVALID_TYPE', e.message);
    e = await rejects(Account.retrieve('001000000000000AAA'), 'retrieve of an unknown ID');
    assert.equal(e.errorCode, 'NOT_FOUND', e.message);
  });

  it('Contact with a lookup AccountId; SELECT Account.Name FROM Contact', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.conn, 'precondition: login failed');
    const acct = await st.conn.sobject('Account').create({ Name: `jsforce-parent-${RUN}` });
    const c1 = await st.conn.sobject('Contact').create({ LastName: `Child-${RUN}`, FirstName: 'Ada', AccountId: acct.id });
    const c2 = await st.conn.sobject('Contact').create({ LastName: `Orphan-${RUN}` });
    assert.match(c1.id, /^003/);
    const got = await st.conn.sobject('Contact').retrieve(c1.id);
    assert.equal(got.AccountId, acct.id);

    const res = await st.conn.query(
      `SELECT Id, LastName, Account.Name FROM Contact WHERE LastName LIKE '%-${RUN}' ORDER BY LastName`);
    assert.equal(res.totalSize, 2);
    const [child, orphan] = res.records;
    checkRecord(child, 'Contact');
    assert.equal(child.Id, c1.id);
    assert.equal(child.Account.Name, `jsforce-parent-${RUN}`);
    assert.equal(child.Account.attributes.type, 'Account');
    assert.equal(orphan.Id, c2.id);
    assert.equal(orphan.Account, null, 'a missing parent is null');

    // The same through jsforce's query builder (find with a parent field).
    const viaFind = await st.conn.sobject('Contact').find({ AccountId: acct.id }, ['Id', 'Account.Name']);
    assert.deepEqual(viaFind.map((r) => [r.Id, r.Account.Name]), [[c1.id, `jsforce-parent-${RUN}`]]);

    // A lookup to nothing is refused.
    const e = await rejects(st.conn.sobject('Contact').create({ LastName: 'Bad', AccountId: '001000000000000AAA' }),
      'contact with a lookup to no account');
    assert.equal(e.errorCode, 'INVALID_CROSS_REFERENCE_KEY', e.message);
  });

  it(`create ${BULK} Accounts (${CONCURRENCY} requests in flight)`, { timeout: TEST_TIMEOUT * 3 }, async (t) => {
    assert.ok(st.conn, 'precondition: login failed');
    const Account = st.conn.sobject('Account');
    const t0 = Date.now();
    const results = await pool(BULK, CONCURRENCY, (i) => Account.create({ Name: `jsforce-bulk-${RUN}-${String(i).padStart(5, '0')}` }));
    t.diagnostic(`${BULK} creates in ${Date.now() - t0} ms`);
    assert.ok(results.every((r) => r.success === true && ID18.test(r.id)));
    st.bulkIds = new Set(results.map((r) => r.id));
    assert.equal(st.bulkIds.size, BULK, 'every create returned a distinct ID');
  });

  it('query + queryMore: a first batch of 2000, nextRecordsUrl, the rest', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.bulkIds, 'precondition: bulk create failed');
    const soql = `SELECT Id, Name FROM Account WHERE Name LIKE 'jsforce-bulk-${RUN}-%' ORDER BY Name`;
    const mark = log.length;
    const first = await st.conn.query(soql); // no autoFetch: one batch
    assert.equal(first.totalSize, BULK);
    assert.equal(first.done, false);
    assert.equal(first.records.length, 2000);
    // jsforce hands back its own URL for the locator (the last segment of Valet's nextRecordsUrl).
    assert.match(first.nextRecordsUrl, new RegExp(`^${BASE}/services/data/v${API_VERSION}/query/01g[A-Za-z0-9]{15}-2000$`));
    const seen = first.records.map((r) => r.Id);
    let next = first.nextRecordsUrl;
    while (next) {
      const more = await st.conn.queryMore(next);
      seen.push(...more.records.map((r) => r.Id));
      next = more.done ? null : more.nextRecordsUrl;
      assert.ok(seen.length <= BULK, 'more records than totalSize');
    }
    assert.equal(seen.length, BULK);
    assert.equal(new Set(seen).size, BULK, 'no record twice across batches');
    assert.deepEqual(new Set(seen), st.bulkIds);
    // Sorted by Name across the batch boundary.
    const names = [...first.records];
    assert.equal(names[0].Name, `jsforce-bulk-${RUN}-00000`);
    assert.equal(names[1999].Name, `jsforce-bulk-${RUN}-01999`);
    const reqs = log.slice(mark);
    assert.equal(reqs.length, Math.ceil(BULK / 2000), `requests:\n  ${fmt(reqs)}`);
    assert.ok(reqs.every((r) => r.status === 200), fmt(reqs));
    assert.match(reqs[1].path, new RegExp(`^/services/data/v${API_VERSION}/query/01g[A-Za-z0-9]{15}-2000$`), 'jsforce re-requests the locator under its version');

    // Valet's own answer, as a raw request: a relative nextRecordsUrl, honoured under another version.
    const raw = await st.conn.request(`/services/data/v${API_VERSION}/query?q=${encodeURIComponent(soql)}`);
    assert.equal(raw.done, false);
    assert.match(raw.nextRecordsUrl, new RegExp(`^/services/data/v${API_VERSION}/query/01g[A-Za-z0-9]{15}-2000$`));
    const rest = await st.conn.request(raw.nextRecordsUrl.replace(`/v${API_VERSION}/`, '/v50.0/'));
    assert.equal(rest.done, true);
    assert.equal(rest.records.length, BULK - 2000);
    assert.equal(rest.nextRecordsUrl, undefined, 'no nextRecordsUrl on the last batch');
  });

  it("conn.query('SELECT Id, Name FROM Account').run({ autoFetch: true, maxFetch: 5000 }) fetches every record", { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.bulkIds, 'precondition: bulk create failed');
    const count = (await st.conn.query('SELECT COUNT() FROM Account')).totalSize;
    assert.ok(count >= BULK, `COUNT() = ${count}`);
    assert.ok(count <= 5000, `more than maxFetch accounts (${count}): the test would be truncated`);
    const mark = log.length;
    const ids = [];
    let totalSize;
    await new Promise((resolve, reject) => {
      const q = st.conn.query('SELECT Id, Name FROM Account')
        .on('record', (r) => ids.push(r.Id))
        .on('end', () => { totalSize = q.totalSize; resolve(); })
        .on('error', reject)
        .run({ autoFetch: true, maxFetch: 5000 });
    });
    assert.equal(totalSize, count);
    assert.equal(ids.length, count);
    assert.equal(new Set(ids).size, count, 'no record twice');
    for (const id of st.bulkIds) assert.ok(ids.includes(id), `missing ${id}`);
    const reqs = log.slice(mark);
    assert.equal(reqs.length, Math.ceil(count / 2000), `requests:\n  ${fmt(reqs)}`);

    // The promise form with a smaller maxFetch stops there.
    const capped = await st.conn.query('SELECT Id FROM Account').autoFetch(true).maxFetch(2100);
    assert.equal(capped.records.length, 2100);
    assert.equal(capped.totalSize, count);
  });

  it('a revoked access token: 401 INVALID_SESSION_ID, jsforce refreshes exactly once and the query succeeds', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(st.conn, 'precondition: login failed');
    const conn = st.conn;
    const oldToken = conn.accessToken;
    const refreshes = [];
    conn.on('refresh', (accessToken) => refreshes.push(accessToken));

    // Kill the access token only (Salesforce: revoking an access token keeps the refresh token).
    await oauth2.revokeToken(oldToken);
    // What Valet now answers to that token, seen by a plain client.
    const r = await fetch(`${BASE}/services/data/v${API_VERSION}/query?q=${encodeURIComponent('SELECT Id FROM Account LIMIT 1')}`,
      { headers: { Authorization: `Bearer ${oldToken}` } });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Token');
    assert.deepEqual(await r.json(), [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);

    const mark = log.length;
    const res = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE 'jsforce-bulk-${RUN}-%'`);
    const reqs = log.slice(mark);
    assert.equal(res.totalSize, st.bulkIds ? BULK : 0);
    assert.equal(refreshes.length, 1, 'one refresh event');
    assert.notEqual(conn.accessToken, oldToken);
    assert.equal(refreshes[0], conn.accessToken);
    assert.deepEqual(reqs.map((e) => [e.method, e.path.split('?')[0], e.status]), [
      ['GET', `/services/data/v${API_VERSION}/query`, 401],
      ['POST', '/services/oauth2/token', 200],
      ['GET', `/services/data/v${API_VERSION}/query`, 200],
    ], `requests:\n  ${fmt(reqs)}`);

    // The new token keeps working without another refresh.
    const rec = await conn.sobject('Account').create({ Name: `jsforce-after-refresh-${RUN}` });
    assert.equal((await conn.sobject('Account').retrieve(rec.id)).Name, `jsforce-after-refresh-${RUN}`);
    assert.equal(refreshes.length, 1, 'no further refresh');
    assert.equal(log.slice(mark).filter((e) => e.path.startsWith('/services/oauth2/token')).length, 1, 'one token-endpoint call');
  });
});
