"""simple-salesforce (unmodified, from PyPI) on Valet's REST data API, over TLS.

The token comes from simple-salesforce's own client-credentials login (Run-As = the e2e user)
through the rewriting session of ss_session.py; the REST calls go to the token response's
`instance_url`, Valet's TLS listener (`valet serve --tls-self-signed`). Most tests use the
library's *direct mode*, `Salesforce(instance_url='https://127.0.0.1:PORT', session_id=TOKEN)`.
Every request to Valet is recorded with its status, so the library's URL shapes (trailing
slashes on `sobjects/Account/`, `query/?q=`, `queryAll/`, `limits/`, `sobjects/Account/`
metadata; `nextRecordsUrl` followed as a path) are asserted, not assumed.

Environment (set by e2e/run.sh): VALET_BASE, VALET_E2E_TLS_BASE, REQUESTS_CA_BUNDLE,
VALET_E2E_USERNAME, VALET_E2E_PASSWORD, VALET_E2E_CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET.
"""

import math
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from helpers import HTTP_TIMEOUT, USERNAME, require_env
from ss_session import MY_DOMAIN, TLS_BASE, Calls, Seen, valet_session

CA = os.environ.get("REQUESTS_CA_BUNDLE", "")
CC_CLIENT_ID = os.environ.get("VALET_E2E_CC_CLIENT_ID", "")
CC_CLIENT_SECRET = os.environ.get("VALET_E2E_CC_CLIENT_SECRET", "")
VERSION = "59.0"  # simple-salesforce's default
DATA = f"/services/data/v{VERSION}"
RUN = secrets.token_hex(4)
PAGED = 450  # accounts of this run for the batchSize=200 paging test
ID18 = re.compile(r"^[A-Za-z0-9]{18}$")
LOCATOR = r"01g[A-Za-z0-9]{15}"


@pytest.fixture(scope="module", autouse=True)
def env():
    require_env(VALET_E2E_TLS_BASE=TLS_BASE, REQUESTS_CA_BUNDLE=CA,
                VALET_E2E_CC_CLIENT_ID=CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET=CC_CLIENT_SECRET)
    assert TLS_BASE.startswith("https://"), TLS_BASE
    assert Path(CA).is_file(), f"REQUESTS_CA_BUNDLE={CA} is not a file"


def cc_login(seen, calls):
    """simple-salesforce's client-credentials login (Basic auth at https://valet-e2e.my.salesforce.com)."""
    return Salesforce(consumer_key=CC_CLIENT_ID, consumer_secret=CC_CLIENT_SECRET, domain=MY_DOMAIN,
                      session=valet_session(seen, calls))


@pytest.fixture(scope="module")
def calls():
    return Calls()


@pytest.fixture(scope="module")
def sf(calls):
    """Direct mode: instance_url + session_id (the token of a client-credentials login)."""
    login = cc_login(Seen(), calls)
    assert login.sf_instance == TLS_BASE.removeprefix("https://")
    direct = Salesforce(instance_url=TLS_BASE, session_id=login.session_id, session=valet_session(Seen(), calls))
    assert direct.auth_type == "direct"
    assert direct.base_url == f"{TLS_BASE}{DATA}/"
    return direct


def made(calls, mark):
    return [(m, p, s) for m, p, s in calls[mark:]]


def test_metadata_calls_and_their_trailing_slashes(sf, calls):
    mark = len(calls)
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "User", "Organization"} <= names
    meta = sf.Account.metadata()
    assert meta["objectDescribe"]["name"] == "Account" and meta["objectDescribe"]["keyPrefix"] == "001"
    assert isinstance(meta["recentItems"], list)
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["AccountId"]["type"] == "reference" and fields["AccountId"]["referenceTo"] == ["Account"]
    limits = sf.limits()
    assert "Max" in limits["DailyApiRequests"] and "Remaining" in limits["DailyApiRequests"]
    assert sf.is_sandbox() is False
    assert [(m, p.split("?")[0], s) for m, p, s in made(calls, mark)] == [
        ("GET", f"{DATA}/sobjects", 200),
        ("GET", f"{DATA}/sobjects/Account/", 200),
        ("GET", f"{DATA}/sobjects/Contact/describe", 200),
        ("GET", f"{DATA}/limits/", 200),
        ("GET", f"{DATA}/query/", 200),
    ], calls.show(mark)
    assert made(calls, mark)[-1][1] == f"{DATA}/query/?q=SELECT IsSandbox FROM Organization LIMIT 1"


def test_account_create_get_update_delete(sf, calls):
    mark = len(calls)
    name = f"ss-crud-{RUN}"
    res = sf.Account.create({"Name": name, "Industry": "Banking"})
    assert set(res) == {"id", "success", "errors"} and res["success"] is True and res["errors"] == [], res
    rid = res["id"]
    assert rid.startswith("001") and ID18.match(rid), rid
    rec = sf.Account.get(rid)
    assert rec["Id"] == rid and rec["Name"] == name and rec["Industry"] == "Banking"
    assert rec["attributes"] == {"type": "Account", "url": f"{DATA}/sobjects/Account/{rid}"}
    assert sf.Account.get(rid[:15])["Id"] == rid, "15-character IDs in, 18 out"
    assert sf.Account.update(rid, {"Name": f"{name}-2", "Industry": None}) == 204
    rec = sf.Account.get(rid)
    assert rec["Name"] == f"{name}-2" and rec["Industry"] is None
    assert sf.Account.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound) as ei:
        sf.Account.get(rid)
    assert ei.value.content[0]["errorCode"] == "ENTITY_IS_DELETED", ei.value.content
    assert sf.query(f"SELECT Id FROM Account WHERE Id = '{rid}'")["totalSize"] == 0
    deleted = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Id = '{rid}'", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in deleted["records"]] == [(rid, True)]
    assert made(calls, mark)[:7] == [
        ("POST", f"{DATA}/sobjects/Account/", 201),
        ("GET", f"{DATA}/sobjects/Account/{rid}", 200),
        ("GET", f"{DATA}/sobjects/Account/{rid[:15]}", 200),
        ("PATCH", f"{DATA}/sobjects/Account/{rid}", 204),
        ("GET", f"{DATA}/sobjects/Account/{rid}", 200),
        ("DELETE", f"{DATA}/sobjects/Account/{rid}", 204),
        ("GET", f"{DATA}/sobjects/Account/{rid}", 404),
    ], calls.show(mark)
    assert made(calls, mark)[-1][1].startswith(f"{DATA}/queryAll/?q=SELECT Id, IsDeleted FROM Account")


def test_errors_raise_the_matching_exceptions(sf):
    with pytest.raises(SalesforceMalformedRequest) as ei:
        sf.Account.create({"Name": "x", "NoSuchField__c": 1})
    assert ei.value.content[0]["errorCode"] == "INVALID_FIELD", ei.value.content
    with pytest.raises(SalesforceMalformedRequest) as ei:
        sf.query("SELECT Id FROM")
    assert ei.value.content[0]["errorCode"] == "MALFORMED_QUERY", ei.value.content
    with pytest.raises(SalesforceResourceNotFound) as ei:
        sf.Account.get("001000000000000AAA")
    assert ei.value.content[0]["errorCode"] == "NOT_FOUND", ei.value.content


def test_contact_with_account_lookup_and_parent_field_query(sf):
    acct = sf.Account.create({"Name": f"ss-parent-{RUN}"})["id"]
    cid = sf.Contact.create({"LastName": f"ss-child-{RUN}", "AccountId": acct})["id"]
    assert cid.startswith("003")
    assert sf.Contact.get(cid)["AccountId"] == acct
    res = sf.query(f"SELECT Id, Account.Name FROM Contact WHERE Id = '{cid}'")
    assert res["totalSize"] == 1 and res["done"] is True
    rec = res["records"][0]
    assert rec["Id"] == cid
    assert rec["Account"]["Name"] == f"ss-parent-{RUN}"
    assert rec["Account"]["attributes"]["type"] == "Account"


def create_accounts(sf, names):
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda n: sf.Account.create({"Name": n}), names))
    assert all(r["success"] for r in results)
    return {r["id"] for r in results}


def test_query_all_follows_next_records_url_batch_size_200(sf, calls):
    ids = create_accounts(sf, [f"ss-page-{RUN}-{i:04d}" for i in range(PAGED)])
    assert len(ids) == PAGED
    mark = len(calls)
    res = sf.query_all(f"SELECT Id, Name FROM Account WHERE Name LIKE 'ss-page-{RUN}-%' ORDER BY Name",
                       headers={"Sforce-Query-Options": "batchSize=200"})
    got = [r["Id"] for r in res["records"]]
    assert len(got) == PAGED and set(got) == ids, (len(got), len(set(got)))
    assert [r["Name"] for r in res["records"]] == [f"ss-page-{RUN}-{i:04d}" for i in range(PAGED)]
    reqs = made(calls, mark)
    assert len(reqs) == math.ceil(PAGED / 200), calls.show(mark)
    assert reqs[0][1].startswith(f"{DATA}/query/?q=SELECT Id, Name FROM Account"), reqs[0]
    for (m, p, s), offset in zip(reqs[1:], (200, 400)):
        assert m == "GET" and s == 200 and re.fullmatch(rf"{DATA}/query/{LOCATOR}-{offset}", p), (m, p, s)


def test_query_all_accounts_past_2000(sf, calls):
    """Every Account of the org (jsforce-rest left 2,500; tops up to 2,050 when run alone)."""
    count = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    if count <= 2000:
        create_accounts(sf, [f"ss-topup-{RUN}-{i:04d}" for i in range(2050 - count)])
        count = 2050
    mark = len(calls)
    res = sf.query_all("SELECT Id, Name FROM Account")
    got = [r["Id"] for r in res["records"]]
    assert res["totalSize"] == len(got) == count
    assert len(set(got)) == count, "no record twice"
    reqs = made(calls, mark)
    assert len(reqs) == math.ceil(count / 2000), calls.show(mark)
    assert all(s == 200 for _, _, s in reqs), calls.show(mark)
    assert re.fullmatch(rf"{DATA}/query/{LOCATOR}-2000", reqs[1][1]), reqs[1]


def revoke(token):
    r = requests.post(f"{TLS_BASE}/services/oauth2/revoke", data={"token": token}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, (r.status_code, r.text)


def test_revoked_session_direct_mode_raises_and_a_login_session_logs_in_again(calls):
    seen = Seen()
    sf = cc_login(seen, calls)
    assert seen == [f"POST {MY_DOMAIN}.salesforce.com/services/oauth2/token"], seen
    old = sf.session_id
    revoke(old)

    # Direct mode cannot log in again: a 401 INVALID_SESSION_ID becomes SalesforceExpiredSession.
    direct = Salesforce(instance_url=TLS_BASE, session_id=old, session=valet_session(Seen(), calls))
    with pytest.raises(SalesforceExpiredSession) as ei:
        direct.query("SELECT Id FROM Account LIMIT 1")
    assert ei.value.status == 401
    assert ei.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]

    # A login session logs in again once on that 401 and repeats the request.
    mark = len(calls)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] >= 1
    assert seen == [f"POST {MY_DOMAIN}.salesforce.com/services/oauth2/token"] * 2, seen
    assert sf.session_id != old
    assert [s for _, _, s in made(calls, mark)] == [401, 200], calls.show(mark)

    # The same through SFType (sf.Account...), which has its own retry path.
    revoke(sf.session_id)
    mark = len(calls)
    rid = sf.Account.create({"Name": f"ss-after-relogin-{RUN}"})["id"]
    assert len(seen) == 3, seen
    assert [(m, s) for m, _, s in made(calls, mark)] == [("POST", 401), ("POST", 201)], calls.show(mark)
    assert sf.Account.get(rid)["Name"] == f"ss-after-relogin-{RUN}"
