"""Shared by the Python e2e suites: the browser steps (e2e/node/browser.js) and the environment."""

import os
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

BASE = os.environ.get("VALET_BASE", "").rstrip("/")
USERNAME = os.environ.get("VALET_E2E_USERNAME", "")
PASSWORD = os.environ.get("VALET_E2E_PASSWORD", "")
REDIRECT_URI = os.environ.get("VALET_E2E_REDIRECT_URI", "http://localhost:1717/OauthRedirect")
NODE = os.environ.get("VALET_E2E_NODE", "node")
BROWSER_JS = Path(__file__).resolve().parent.parent / "node" / "browser.js"
HTTP_TIMEOUT = 30


def require_env(**extra):
    """Fail (not skip) when run.sh's environment is missing: a suite that silently skips proves nothing."""
    wanted = {"VALET_BASE": BASE, "VALET_E2E_USERNAME": USERNAME, "VALET_E2E_PASSWORD": PASSWORD, **extra}
    missing = [k for k, v in wanted.items() if not v]
    if missing:
        pytest.fail(f"missing env: {', '.join(missing)} (run through e2e/run.sh)")


def _node(args, label):
    env = dict(os.environ, VALET_E2E_PASSWORD=PASSWORD, VALET_E2E_LABEL=label)
    try:
        proc = subprocess.run([NODE, str(BROWSER_JS), *args], env=env, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"browser step timed out: {e}")
    if proc.returncode != 0:
        pytest.fail(f"browser step failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def browser_redirect(auth_url: str, label: str) -> str:
    """Log in and consent in headless chromium; return the redirect URL to REDIRECT_URI (no error in it)."""
    url = _node([auth_url, USERNAME, "-", REDIRECT_URI], label)
    assert url.startswith(REDIRECT_URI), url
    q = parse_qs(urlsplit(url).query)
    assert "error" not in q, f"authorize redirected with an error: {q}"
    return url


def browser_device(verification_uri: str, user_code: str, label: str, decision: str = "allow") -> str:
    """The person's side of a device flow at /setup/connect; returns the text of the final page."""
    os.environ["VALET_E2E_DECISION"] = decision
    try:
        return _node(["--device", verification_uri, user_code, USERNAME, "-"], label)
    finally:
        os.environ.pop("VALET_E2E_DECISION", None)
