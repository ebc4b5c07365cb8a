"""The `requests.Session` the simple-salesforce suites hand to the library.

simple-salesforce builds its login URL as `https://{domain}.salesforce.com/services/oauth2/token`.
The session's transport adapter sends those hosts to Valet's TLS listener (path and query
unchanged) and records them; requests to Valet's TLS listener itself go straight there and are
recorded too; anything else is refused, so nothing leaves the machine.
"""

import os
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from requests import Session
from requests.adapters import HTTPAdapter

from helpers import HTTP_TIMEOUT

TLS_BASE = os.environ.get("VALET_E2E_TLS_BASE", "").rstrip("/")
MY_DOMAIN = "valet-e2e.my"
SALESFORCE_HOSTS = ("login.salesforce.com", "test.salesforce.com", f"{MY_DOMAIN}.salesforce.com")


class Seen(list):
    """The requests sent to Salesforce hosts ("METHOD host/path"); .responses: Valet's answers."""

    def __init__(self):
        super().__init__()
        self.responses = []

    def last_error(self):
        r = self.responses[-1]
        return r.status_code, r.json().get("error"), r.json().get("error_description")


class RewriteToValet(HTTPAdapter):
    """Sends a request for a Salesforce login host to Valet's TLS listener (same path and query)."""

    def __init__(self, target, seen, **kw):
        self.target = urlsplit(target)
        self.seen = seen
        super().__init__(**kw)

    def send(self, request, **kw):
        u = urlsplit(request.url)
        self.seen.append(f"{request.method} {u.netloc}{u.path}")
        request.url = urlunsplit((self.target.scheme, self.target.netloc, u.path, u.query, u.fragment))
        request.headers.pop("Host", None)
        kw.setdefault("timeout", HTTP_TIMEOUT)
        response = super().send(request, **kw)
        self.seen.responses.append(response)
        return response


class Calls(list):
    """Requests to Valet's TLS listener, as (method, path[?query, decoded], status)."""

    def since(self, mark):
        return self[mark:]

    def show(self, mark=0):
        return "\n  ".join(f"{m} {p} -> {s}" for m, p, s in self[mark:])


class RecordToValet(HTTPAdapter):
    def __init__(self, calls, **kw):
        self.calls = calls
        super().__init__(pool_maxsize=16, **kw)

    def send(self, request, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        response = super().send(request, **kw)
        u = urlsplit(request.url)
        self.calls.append((request.method, unquote_plus(u.path + (f"?{u.query}" if u.query else "")), response.status_code))
        return response


class Refuse(HTTPAdapter):
    def send(self, request, **kw):
        raise AssertionError(f"the test session refuses to leave the machine: {request.method} {request.url}")


def valet_session(seen, calls=None):
    s = Session()
    s.mount("http://", Refuse())
    s.mount("https://", Refuse())
    s.mount(f"{TLS_BASE}/", RecordToValet(calls if calls is not None else Calls()))
    for host in SALESFORCE_HOSTS:
        s.mount(f"https://{host}/", RewriteToValet(TLS_BASE, seen))
    return s
