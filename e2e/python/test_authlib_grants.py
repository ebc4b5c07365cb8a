"""Authlib (unmodified, from PyPI) with the grants that need no redirect: the RFC 8628 device
flow (the person approves at /setup/connect in headless chromium), client credentials, and
`private_key_jwt` client authentication (Authlib's PrivateKeyJWT, RS256).

Environment (set by e2e/run.sh):
  VALET_BASE, VALET_E2E_USERNAME, VALET_E2E_PASSWORD, VALET_E2E_REDIRECT_URI, VALET_E2E_NODE
  VALET_E2E_DEVICE_CLIENT_ID                         default PlatformCLI (public, device flow enabled)
  VALET_E2E_CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET  client credentials enabled, Run-As = the e2e user
  VALET_E2E_PKJ_CLIENT_ID, VALET_E2E_PKJ_KEY_FILE     app whose jwt_certificate_pem is the certificate
                                                     of that key; client credentials enabled too
"""

import os
import time
from pathlib import Path

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import RSAKey

from helpers import BASE, HTTP_TIMEOUT, REDIRECT_URI, USERNAME, browser_device, browser_redirect, require_env
from make_cert import make as make_key_and_cert

DEVICE_CLIENT_ID = os.environ.get("VALET_E2E_DEVICE_CLIENT_ID", "PlatformCLI")
CC_CLIENT_ID = os.environ.get("VALET_E2E_CC_CLIENT_ID", "")
CC_CLIENT_SECRET = os.environ.get("VALET_E2E_CC_CLIENT_SECRET", "")
PKJ_CLIENT_ID = os.environ.get("VALET_E2E_PKJ_CLIENT_ID", "")
PKJ_KEY_FILE = os.environ.get("VALET_E2E_PKJ_KEY_FILE", "")

TOKEN_URL = f"{BASE}/services/oauth2/token"
AUTHORIZE_URL = f"{BASE}/services/oauth2/authorize"
USERINFO_URL = f"{BASE}/services/oauth2/userinfo"
DEVICE_AUTHZ_URL = f"{BASE}/services/oauth2/device_authorization"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_POLL_LIMIT_S = 90


def session(client_id, client_secret=None, **kw) -> OAuth2Session:
    s = OAuth2Session(client_id, client_secret, **kw)
    s.trust_env = False  # loopback http: no proxies
    return s


def userinfo_ok(access_token):
    r = requests.get(USERINFO_URL, headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"userinfo: {r.status_code} {r.text[:300]}"
    ui = r.json()
    assert ui["preferred_username"] == USERNAME, ui
    return ui


def oauth_error(exc_info):
    return exc_info.value.error


# --- device flow (RFC 8628) ------------------------------------------------------------------

def start_device(s: OAuth2Session, scope="api refresh_token"):
    # Authlib has no helper for the device authorization request: a plain POST, no token yet.
    r = s.post(DEVICE_AUTHZ_URL, data={"client_id": DEVICE_CLIENT_ID, "scope": scope}, withhold_token=True, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    d = r.json()
    for k in ("device_code", "user_code", "verification_uri", "expires_in", "interval"):
        assert k in d, f"device authorization response lacks {k}: {sorted(d)}"
    assert d["verification_uri"] == f"{BASE}/setup/connect"
    assert d.get("verification_uri_complete", "").startswith(d["verification_uri"])
    return d


def poll(s: OAuth2Session, d):
    """Poll the URN grant as RFC 8628 §3.5 says: every `interval` s, +5 s on slow_down; bounded."""
    interval = int(d.get("interval", 5))
    deadline = time.monotonic() + DEVICE_POLL_LIMIT_S
    seen = []
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            return s.fetch_token(TOKEN_URL, grant_type=DEVICE_GRANT, device_code=d["device_code"]), seen
        except OAuthError as e:
            seen.append(e.error)
            if e.error == "slow_down":
                interval += 5
            elif e.error != "authorization_pending":
                raise
    pytest.fail(f"device flow not finished within {DEVICE_POLL_LIMIT_S} s (errors seen: {seen})")


@pytest.fixture(scope="module")
def device_session():
    require_env()
    return session(DEVICE_CLIENT_ID, token_endpoint_auth_method="none")


def test_discovery_advertises_device_endpoint():
    require_env()
    md = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
    assert md.get("device_authorization_endpoint") == DEVICE_AUTHZ_URL
    assert DEVICE_GRANT in md.get("grant_types_supported", [])


def test_device_flow_approved(device_session):
    s = device_session
    d = start_device(s)
    # Before the person acts: authorization_pending (400).
    with pytest.raises(OAuthError) as ei:
        s.fetch_token(TOKEN_URL, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert oauth_error(ei) == "authorization_pending"
    page = browser_device(d["verification_uri_complete"], d["user_code"], "authlib-device")
    assert "connected" in page.lower(), page
    token, _ = poll(s, d)
    assert token.get("access_token") and token.get("refresh_token"), sorted(token)
    assert token["token_type"].lower() == "bearer"
    userinfo_ok(token["access_token"])
    # The device code is spent.
    with pytest.raises(OAuthError) as ei:
        s.fetch_token(TOKEN_URL, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert oauth_error(ei) in ("invalid_grant", "expired_token"), ei.value
    # Refresh as a public client (no secret).
    refreshed = s.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    userinfo_ok(refreshed["access_token"])


def test_device_flow_denied(device_session):
    s = device_session
    d = start_device(s, scope="api")
    page = browser_device(d["verification_uri"], d["user_code"], "authlib-device-deny", decision="deny")
    assert "denied" in page.lower(), page
    with pytest.raises(OAuthError) as ei:
        poll(s, d)
    assert oauth_error(ei) == "access_denied", ei.value


def test_device_flow_unknown_code(device_session):
    with pytest.raises(OAuthError) as ei:
        device_session.fetch_token(TOKEN_URL, grant_type=DEVICE_GRANT, device_code="not-a-device-code")
    assert oauth_error(ei) in ("invalid_grant", "expired_token"), ei.value


# --- client credentials ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cc_app():
    require_env(VALET_E2E_CC_CLIENT_ID=CC_CLIENT_ID, VALET_E2E_CC_CLIENT_SECRET=CC_CLIENT_SECRET)
    return CC_CLIENT_ID, CC_CLIENT_SECRET


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(cc_app, auth_method):
    s = session(*cc_app, token_endpoint_auth_method=auth_method)
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token.get("access_token")
    assert "refresh_token" not in token, "client credentials issues no refresh token"
    assert "id_token" not in token
    assert token.get("instance_url") == BASE
    assert token["token_type"].lower() == "bearer"
    userinfo_ok(token["access_token"])  # acts as the Run-As user
    r = s.get(USERINFO_URL, timeout=HTTP_TIMEOUT)  # Authlib's own bearer auth
    assert r.status_code == 200, r.text


def test_client_credentials_wrong_secret(cc_app):
    s = session(cc_app[0], "not-the-secret")
    with pytest.raises(OAuthError) as ei:
        s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert oauth_error(ei) == "invalid_client", ei.value


# --- private_key_jwt ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pkj_key():
    require_env(VALET_E2E_PKJ_CLIENT_ID=PKJ_CLIENT_ID, VALET_E2E_PKJ_KEY_FILE=PKJ_KEY_FILE)
    return Path(PKJ_KEY_FILE).read_bytes()


def pkj_session(key, **kw):
    s = session(PKJ_CLIENT_ID, key, token_endpoint_auth_method="private_key_jwt", **kw)
    s.register_client_auth_method(PrivateKeyJWT(TOKEN_URL))
    return s


def test_private_key_jwt_client_credentials(pkj_key):
    s = pkj_session(pkj_key)
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token.get("access_token"), token
    userinfo_ok(token["access_token"])
    # A second call signs a new assertion (new jti) and works too.
    again = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert again["access_token"] != token["access_token"]


def test_private_key_jwt_code_exchange(pkj_key):
    """Web server flow whose code is redeemed with a signed assertion instead of the secret."""
    s = pkj_session(pkj_key, scope="api refresh_token", redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    verifier = generate_token(64)
    uri, state = s.create_authorization_url(AUTHORIZE_URL, code_verifier=verifier)
    redirect = browser_redirect(uri, "authlib-private-key-jwt")
    token = s.fetch_token(TOKEN_URL, authorization_response=redirect, state=state, code_verifier=verifier)
    assert token.get("access_token") and token.get("refresh_token"), sorted(token)
    userinfo_ok(token["access_token"])
    refreshed = s.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    userinfo_ok(refreshed["access_token"])


def _post_assertion(assertion):
    return requests.post(TOKEN_URL, timeout=HTTP_TIMEOUT, data={
        "grant_type": "client_credentials", "client_id": PKJ_CLIENT_ID,
        "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion,
    })


def test_private_key_jwt_replay_refused(pkj_key):
    assertion = private_key_jwt_sign(RSAKey.import_key(pkj_key), PKJ_CLIENT_ID, TOKEN_URL)  # Authlib's signer, as PrivateKeyJWT uses
    first = _post_assertion(assertion)
    assert first.status_code == 200, first.text
    second = _post_assertion(assertion)
    assert second.status_code in (400, 401), second.text
    assert second.json().get("error") == "invalid_client", second.text


def test_private_key_jwt_other_key_refused(pkj_key):
    other_key, _ = make_key_and_cert("other")  # a key whose certificate Valet does not have
    s = pkj_session(other_key)
    with pytest.raises(OAuthError) as ei:
        s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert oauth_error(ei) == "invalid_client", ei.value


def test_private_key_jwt_wrong_audience_refused(pkj_key):
    assertion = private_key_jwt_sign(RSAKey.import_key(pkj_key), PKJ_CLIENT_ID, "https://elsewhere.example/token")
    r = _post_assertion(assertion)
    assert r.status_code in (400, 401), r.text
    assert r.json().get("error") == "invalid_client", r.text
