"""simple-salesforce (unmodified, from PyPI) logging in to Valet: JWT bearer and client credentials.

simple-salesforce only talks https and builds its login URL from `domain` as
`https://{domain}.salesforce.com/services/oauth2/token`. The test gives it a `requests.Session`
whose transport adapter sends those hosts to Valet's TLS listener (`valet serve
--tls-self-signed`), path and query unchanged; everything else that is not Valet is refused, so
nothing leaves the machine (e2e/python/ss_session.py). The token response's `instance_url` is
Valet's TLS URL, so calls after login go there directly. `REQUESTS_CA_BUNDLE` must name Valet's
CA (run.sh sets it for this process; requests lets the variable win over `session.verify`).

The JWT that simple-salesforce signs has `aud` = `https://{domain}.salesforce.com` and `exp` as a
JSON *string*, no `iat`, no `jti`. Client credentials needs a `domain` other than login/test
(a My Domain such as `valet-e2e.my`). Only userinfo is asserted after login here; the REST
data API is test_simple_salesforce_rest.py.

Environment (set by e2e/run.sh):
  VALET_BASE (http), VALET_E2E_TLS_BASE (https, same database), REQUESTS_CA_BUNDLE,
  VALET_E2E_USERNAME, VALET_E2E_PASSWORD,
  VALET_E2E_SS_CLIENT_ID, VALET_E2E_SS_KEY_FILE    JWT app (certificate of that key in its policy)
  VALET_E2E_CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET  client-credentials app (Run-As = the e2e user)
"""

import os
import secrets
import warnings
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from helpers import BASE, HTTP_TIMEOUT, REDIRECT_URI, USERNAME, browser_redirect, require_env
from ss_session import MY_DOMAIN, TLS_BASE, Seen, valet_session

CA = os.environ.get("REQUESTS_CA_BUNDLE", "")
SS_CLIENT_ID = os.environ.get("VALET_E2E_SS_CLIENT_ID", "")
SS_KEY_FILE = os.environ.get("VALET_E2E_SS_KEY_FILE", "")
CC_CLIENT_ID = os.environ.get("VALET_E2E_CC_CLIENT_ID", "")
CC_CLIENT_SECRET = os.environ.get("VALET_E2E_CC_CLIENT_SECRET", "")


def check_logged_in(sf: Salesforce):
    assert sf.session_id, "no access token"
    assert sf.sf_instance == urlsplit(TLS_BASE).netloc, f"instance {sf.sf_instance!r}, expected Valet's TLS host"
    # The library's own call to an OAuth endpoint on the instance (Bearer = the session id).
    ui = sf.oauth2("userinfo")
    assert ui["preferred_username"] == USERNAME, ui
    assert ui["user_id"].startswith("005") and ui["organization_id"].startswith("00D"), ui
    return ui


@pytest.fixture(scope="module", autouse=True)
def env():
    require_env(VALET_E2E_TLS_BASE=TLS_BASE, REQUESTS_CA_BUNDLE=CA)
    assert TLS_BASE.startswith("https://"), TLS_BASE
    assert Path(CA).is_file(), f"REQUESTS_CA_BUNDLE={CA} is not a file"
    r = requests.get(f"{TLS_BASE}/readyz", timeout=HTTP_TIMEOUT)  # verifies against REQUESTS_CA_BUNDLE
    assert r.status_code == 200, r.text


# --- JWT bearer --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jwt_app():
    require_env(VALET_E2E_SS_CLIENT_ID=SS_CLIENT_ID, VALET_E2E_SS_KEY_FILE=SS_KEY_FILE)
    return SS_CLIENT_ID, SS_KEY_FILE


def jwt_login(client_id, key_file, seen, domain=None):
    kw = {"domain": domain} if domain else {}
    return Salesforce(username=USERNAME, consumer_key=client_id, privatekey_file=key_file,
                      session=valet_session(seen), **kw)


def test_jwt_refused_before_the_user_approved_the_app(jwt_app):
    seen = Seen()
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SalesforceAuthenticationFailed) as ei:
        warnings.simplefilter("always")
        jwt_login(*jwt_app, seen)
    assert seen.last_error() == (400, "invalid_grant", "user hasn't approved this consumer"), seen.last_error()
    assert ei.value.content == b"user hasn't approved this consumer", ei.value
    # simple-salesforce recognises Salesforce's exact text and tells the user how to approve.
    assert any("Allow Access" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert seen == ["POST login.salesforce.com/services/oauth2/token"], seen


def test_jwt_after_consent(jwt_app):
    client_id, _ = jwt_app
    state = secrets.token_hex(6)
    auth_url = f"{BASE}/services/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "api", "state": state,
    })
    browser_redirect(auth_url, "simple-salesforce-jwt-consent")
    seen = Seen()
    sf = jwt_login(*jwt_app, seen)
    assert seen == ["POST login.salesforce.com/services/oauth2/token"], seen
    assert sf.auth_type == "jwt-bearer"
    check_logged_in(sf)


def test_jwt_with_test_domain(jwt_app):
    """domain='test': the assertion's aud is https://test.salesforce.com, which Valet also accepts."""
    seen = Seen()
    sf = jwt_login(*jwt_app, seen, domain="test")
    assert seen == ["POST test.salesforce.com/services/oauth2/token"], seen
    check_logged_in(sf)


# --- client credentials ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cc_app():
    require_env(VALET_E2E_CC_CLIENT_ID=CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET=CC_CLIENT_SECRET)
    return CC_CLIENT_ID, CC_CLIENT_SECRET


def test_client_credentials(cc_app):
    seen = Seen()
    sf = Salesforce(consumer_key=cc_app[0], consumer_secret=cc_app[1], domain=MY_DOMAIN, session=valet_session(seen))
    assert sf.auth_type == "client-credentials"
    assert seen == [f"POST {MY_DOMAIN}.salesforce.com/services/oauth2/token"], seen
    check_logged_in(sf)  # the Run-As user


def test_client_credentials_wrong_secret(cc_app):
    seen = Seen()
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(consumer_key=cc_app[0], consumer_secret="not-the-secret", domain=MY_DOMAIN, session=valet_session(seen))
    status, error, _ = seen.last_error()
    assert (status, error) in ((400, "invalid_client"), (401, "invalid_client")), seen.last_error()
