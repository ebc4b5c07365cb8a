"""Authlib (unmodified, from PyPI) against a running Valet.

Web server flow with PKCE S256 and nonce, client_secret_basic (Authlib's default) and
client_secret_post, userinfo, the ID token validated the way Authlib's OpenIDMixin.parse_id_token
does it (authlib.jose against /id/keys), refresh, introspection and revocation.

Environment (set by e2e/run.sh):
  VALET_BASE, VALET_E2E_USERNAME, VALET_E2E_PASSWORD,
  VALET_E2E_AUTHLIB_CLIENT_ID, VALET_E2E_AUTHLIB_CLIENT_SECRET (fall back to VALET_E2E_CLIENT_ID/_SECRET),
  VALET_E2E_REDIRECT_URI (default http://localhost:1717/OauthRedirect), VALET_E2E_NODE (default node).
"""

import os
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    # authlib.jose is deprecated in favour of joserfc; it is still what Authlib's own
    # OpenIDMixin.parse_id_token uses, so the suite validates ID tokens with it on purpose.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.oidc.core import CodeIDToken

BASE = os.environ.get("VALET_BASE", "").rstrip("/")
USERNAME = os.environ.get("VALET_E2E_USERNAME", "")
PASSWORD = os.environ.get("VALET_E2E_PASSWORD", "")
CLIENT_ID = os.environ.get("VALET_E2E_AUTHLIB_CLIENT_ID") or os.environ.get("VALET_E2E_CLIENT_ID", "")
CLIENT_SECRET = os.environ.get("VALET_E2E_AUTHLIB_CLIENT_SECRET") or os.environ.get("VALET_E2E_CLIENT_SECRET", "")
REDIRECT_URI = os.environ.get("VALET_E2E_REDIRECT_URI", "http://localhost:1717/OauthRedirect")
NODE = os.environ.get("VALET_E2E_NODE", "node")
BROWSER_JS = Path(__file__).resolve().parent.parent / "node" / "browser.js"
SCOPE = "openid api refresh_token id"
HTTP_TIMEOUT = 30

AUTHORIZE_URL = f"{BASE}/services/oauth2/authorize"
TOKEN_URL = f"{BASE}/services/oauth2/token"
USERINFO_URL = f"{BASE}/services/oauth2/userinfo"
REVOKE_URL = f"{BASE}/services/oauth2/revoke"
INTROSPECT_URL = f"{BASE}/services/oauth2/introspect"


def _require_env():
    missing = [k for k, v in {
        "VALET_BASE": BASE, "VALET_E2E_USERNAME": USERNAME, "VALET_E2E_PASSWORD": PASSWORD,
        "VALET_E2E_AUTHLIB_CLIENT_ID": CLIENT_ID, "VALET_E2E_AUTHLIB_CLIENT_SECRET": CLIENT_SECRET,
    }.items() if not v]
    if missing:
        pytest.fail(f"missing env: {', '.join(missing)} (run through e2e/run.sh)")


def browser_redirect(auth_url: str, label: str) -> str:
    """Log in and consent in headless chromium; return the redirect URL to REDIRECT_URI."""
    env = dict(os.environ, VALET_E2E_PASSWORD=PASSWORD, VALET_E2E_LABEL=label)
    proc = subprocess.run(
        [NODE, str(BROWSER_JS), auth_url, USERNAME, "-", REDIRECT_URI],
        env=env, capture_output=True, text=True, timeout=150,
    )
    if proc.returncode != 0:
        pytest.fail(f"browser step failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    url = proc.stdout.strip().splitlines()[-1]
    assert url.startswith(REDIRECT_URI), url
    q = parse_qs(urlsplit(url).query)
    assert "error" not in q, f"authorize redirected with an error: {q}"
    return url


def new_session(**kw) -> OAuth2Session:
    s = OAuth2Session(
        CLIENT_ID, CLIENT_SECRET, scope=kw.pop("scope", SCOPE), redirect_uri=REDIRECT_URI,
        code_challenge_method="S256", **kw,
    )
    s.trust_env = False  # no proxies for loopback; the CA bundle env var is irrelevant on http
    return s


@pytest.fixture(scope="module")
def metadata():
    _require_env()
    r = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    md = r.json()
    assert md["issuer"] == BASE, f"issuer {md['issuer']!r} must be exactly {BASE!r}"
    return md


@pytest.fixture(scope="module")
def jwks(metadata):
    r = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def flow():
    """One complete authorization: session, token, nonce. Shared by the tests below, in order."""
    _require_env()
    session = new_session()
    code_verifier = generate_token(64)
    nonce = generate_token(20)
    uri, state = session.create_authorization_url(AUTHORIZE_URL, code_verifier=code_verifier, nonce=nonce)
    q = parse_qs(urlsplit(uri).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"] == [nonce]
    redirect = browser_redirect(uri, "authlib-basic")
    token = session.fetch_token(TOKEN_URL, authorization_response=redirect, state=state, code_verifier=code_verifier)
    return {"session": session, "token": dict(token), "nonce": nonce}


def test_discovery(metadata):
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"):
        assert key in metadata, f"discovery lacks {key}"
    assert metadata["authorization_endpoint"] == AUTHORIZE_URL
    assert metadata["token_endpoint"] == TOKEN_URL
    assert metadata["jwks_uri"] == f"{BASE}/id/keys"
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]


def test_token_response_shape(flow):
    t = flow["token"]
    for key in ("access_token", "refresh_token", "id_token", "instance_url", "id", "token_type", "issued_at"):
        assert key in t, f"token response lacks {key}: {sorted(t)}"
    assert t["token_type"].lower() == "bearer"
    assert t["instance_url"] == BASE
    assert isinstance(t["issued_at"], str) and t["issued_at"].isdigit(), "issued_at is a string of ms"
    path = urlsplit(t["id"]).path.split("/")
    assert path[1] == "id" and path[2].startswith("00D") and path[3].startswith("005"), t["id"]
    assert "openid" in t.get("scope", "").split(), t.get("scope")


def test_userinfo(flow):
    t = flow["token"]
    r = flow["session"].get(USERINFO_URL, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    ui = r.json()
    org_id, user_id = t["id"].rstrip("/").split("/")[-2:]
    assert ui["user_id"] == user_id
    assert ui["organization_id"] == org_id
    assert ui["preferred_username"] == USERNAME
    assert ui["sub"] == t["id"], "Salesforce puts the identity URL in sub"


def _decode_id_token(id_token, jwks, metadata, nonce=None, access_token=None):
    key_set = JsonWebKey.import_key_set(jwks)
    algs = metadata.get("id_token_signing_alg_values_supported", ["RS256"])
    claims_params = {"client_id": CLIENT_ID}
    if nonce is not None:
        claims_params["nonce"] = nonce
    if access_token is not None:
        claims_params["access_token"] = access_token
    claims = JsonWebToken(algs).decode(
        id_token, key_set,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [metadata["issuer"]]}},
        claims_params=claims_params,
    )
    claims.validate(leeway=120)
    return claims


def test_id_token(flow, jwks, metadata):
    t = flow["token"]
    claims = _decode_id_token(t["id_token"], jwks, metadata, nonce=flow["nonce"], access_token=t["access_token"])
    assert claims.header["alg"] == "RS256"
    assert claims.header.get("kid") in {k.get("kid") for k in jwks["keys"]}, "kid must name a key in /id/keys"
    assert claims["iss"] == BASE
    aud = claims["aud"]
    assert aud == CLIENT_ID or aud == [CLIENT_ID], f"aud {aud!r}"
    assert claims["nonce"] == flow["nonce"]
    assert claims["sub"] == t["id"], "sub is the identity URL"
    assert "at_hash" in claims, "Valet includes at_hash (validated above against the access token)"
    assert claims["exp"] > time.time() - 120


def test_id_token_rejected_with_wrong_nonce(flow, jwks, metadata):
    with pytest.raises(Exception):
        _decode_id_token(flow["token"]["id_token"], jwks, metadata, nonce="not-the-nonce")


def test_introspect(flow):
    t = flow["token"]
    r = requests.post(INTROSPECT_URL, data={"token": t["access_token"], "token_type_hint": "access_token"},
                      auth=(CLIENT_ID, CLIENT_SECRET), headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert body["active"] is True
    assert body["client_id"] == CLIENT_ID
    assert body["username"] == USERNAME
    assert body["token_type"] == "access_token"
    assert isinstance(body["exp"], int)


def test_refresh_with_wrong_secret_is_refused(flow):
    bad = OAuth2Session(CLIENT_ID, CLIENT_SECRET + "x", scope=SCOPE)
    bad.trust_env = False
    with pytest.raises(OAuthError) as ei:
        bad.refresh_token(TOKEN_URL, refresh_token=flow["token"]["refresh_token"])
    assert ei.value.error in ("invalid_client", "invalid_client_id", "invalid_grant"), ei.value.error


def test_refresh(flow, jwks, metadata):
    session = flow["session"]
    old = flow["token"]
    new = session.refresh_token(TOKEN_URL, refresh_token=old["refresh_token"])
    assert new["access_token"] and new["access_token"] != old["access_token"]
    # Salesforce sends no expires_in and (without rotation) no new refresh token; Authlib keeps the old one.
    assert new["refresh_token"], "Authlib should keep the refresh token"
    assert new["id"] == old["id"]
    if "id_token" in new:
        _decode_id_token(new["id_token"], jwks, metadata, access_token=new["access_token"])
    r = session.get(USERINFO_URL, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"userinfo with refreshed token: {r.status_code} {r.text[:300]}"
    assert r.json()["preferred_username"] == USERNAME
    flow["refreshed"] = dict(new)


def test_revoke_refresh_token(flow):
    session = flow["session"]
    rt = flow["token"]["refresh_token"]
    r = session.revoke_token(REVOKE_URL, token=rt, token_type_hint="refresh_token")
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    with pytest.raises(OAuthError) as ei:
        new_session().refresh_token(TOKEN_URL, refresh_token=rt)
    assert ei.value.error == "invalid_grant", ei.value.error
    # Revoking a refresh token revokes the access tokens issued from it.
    for tok in (flow["token"]["access_token"], flow.get("refreshed", {}).get("access_token")):
        if not tok:
            continue
        r = requests.get(USERINFO_URL, headers={"Authorization": f"Bearer {tok}"}, timeout=HTTP_TIMEOUT)
        assert r.status_code in (401, 403), f"revoked token still accepted by userinfo: {r.status_code}"
    r = requests.post(INTROSPECT_URL, data={"token": flow["token"]["access_token"]},
                      auth=(CLIENT_ID, CLIENT_SECRET), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    assert r.json().get("active") is False, f"revoked access token still active: {r.text[:300]}"


def test_client_secret_post_without_openid():
    """Second flow: credentials in the body, scopes without openid (no id_token expected)."""
    _require_env()
    session = new_session(scope="api refresh_token", token_endpoint_auth_method="client_secret_post")
    code_verifier = generate_token(48)
    uri, state = session.create_authorization_url(AUTHORIZE_URL, code_verifier=code_verifier)
    redirect = browser_redirect(uri, "authlib-post")
    token = session.fetch_token(TOKEN_URL, authorization_response=redirect, state=state, code_verifier=code_verifier)
    assert token["access_token"]
    assert "id_token" not in token, "no openid scope, so no id_token"
    r = session.get(USERINFO_URL, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"userinfo must accept tokens without openid: {r.status_code} {r.text[:300]}"


def test_wrong_code_verifier_is_refused():
    _require_env()
    session = new_session(scope="api")
    uri, state = session.create_authorization_url(AUTHORIZE_URL, code_verifier=generate_token(48))
    redirect = browser_redirect(uri, "authlib-badpkce")
    with pytest.raises(OAuthError) as ei:
        session.fetch_token(TOKEN_URL, authorization_response=redirect, state=state, code_verifier=generate_token(48))
    assert ei.value.error in ("invalid_request", "invalid_grant"), ei.value.error
