"""A browser without the browser, for the admin console's tests: chalice.test.Client with a cookie jar, and forms
filled as a person would (the CSRF token read from the page, the form posted urlencoded). The real-browser run of
every section is tests/test_console_browser.py."""
import html
import json
import re
import urllib.parse

import pytest

SIGN_IN = "/console/sign-in"


class ConsoleClient:
    """One person's browser tab: cookies kept between requests, redirects not followed (tests see each 303)."""

    def __init__(self, client):
        self.client = client
        self.cookies: dict[str, str] = {}
        self.last = None

    def _headers(self, extra=None):
        h = {"Sec-Fetch-Site": "same-origin", **(extra or {})}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return h

    def _keep(self, response):
        set_cookie = response.headers.get("Set-Cookie") or []
        for line in [set_cookie] if isinstance(set_cookie, str) else set_cookie:
            first = line.split(";")[0]
            name, _, value = first.partition("=")
            if "max-age=0" in line.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, path):
        self.last = self._keep(self.client.http.get(path, headers=self._headers()))
        return self.last

    def post(self, path, fields: dict, *, csrf=True, page=None):
        """Posts `fields` to `path`; with csrf, the token is read from `page` (the HTML that has the form; by
        default the last answer) for the form whose action is `path`."""
        data = dict(fields)
        if csrf:
            data.setdefault("csrf_token", csrf_for(page if page is not None else text(self.last),
                                                   urllib.parse.urlparse(path).path))
        body = urllib.parse.urlencode(data, doseq=True)
        self.last = self._keep(self.client.http.post(path, headers=self._headers(
            {"Content-Type": "application/x-www-form-urlencoded"}), body=body))
        return self.last

    def follow(self, response=None, limit=5):
        """Follows 303s from `response` (default the last), returning the final answer."""
        response = response or self.last
        for _ in range(limit):
            if response.status_code not in (302, 303):
                return response
            response = self.get(location(response))
        return response

    def sign_in(self, tenant_id, username, password):
        self.get(SIGN_IN)
        return self.post(SIGN_IN, {"tenant_id": tenant_id, "username": username, "password": password})


def text(response) -> str:
    body = response.body
    return body.decode() if isinstance(body, bytes) else body


def location(response) -> str:
    where = response.headers.get("location") or response.headers.get("Location")
    parsed = urllib.parse.urlparse(where)
    return parsed.path + ("?" + parsed.query if parsed.query else "")


def csrf_for(page: str, action_path: str) -> str:
    """The csrf_token of the form on `page` that posts to `action_path` (its path; the query is ignored)."""
    for match in re.finditer(r'<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page, re.S):
        action = urllib.parse.urlparse(html.unescape(match.group(1))).path
        if action == action_path:
            token = re.search(r'name="csrf_token" value="([^"]+)"', match.group(2))
            if token:
                return token.group(1)
    raise AssertionError(f"no form posting to {action_path} on the page")


def visible_text(page: str) -> str:
    """The page's words, roughly: tags out, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


@pytest.fixture
def console(client):
    return ConsoleClient(client)


@pytest.fixture
def admin_console(console, tenant):
    """A console signed in as the tenant's admin (every permission)."""
    r = console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert r.status_code == 303, text(r)
    return console


@pytest.fixture
def google_only():
    """The stage's OIDC secret with Google set up and Microsoft not (as an operator would leave it)."""
    from chalicelib.core import config
    from chalicelib.flows.portal import oidc
    sm = config.client("secretsmanager")
    body = json.dumps({"google": {"client_id": "console-test", "client_secret": "s",
                                  "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}})
    try:
        sm.create_secret(Name=oidc.secret_name(), SecretString=body)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=oidc.secret_name(), SecretString=body)
    oidc._provider_secrets().clear_cache()
    yield
    oidc._provider_secrets().clear_cache()
