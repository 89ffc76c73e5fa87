"""What the OpenID Provider's tests share: a business's apps, a registered portal user, and a browser-like session
(requests, with its cookies) that fills the hosted forms the way a person's browser posts them."""
import re
import uuid
from urllib.parse import parse_qs, urlparse

import requests
from conftest import drain, links_to

PORTAL_PASSWORD = "Sunny-Porch-2026"
# The app's side: the tests read the redirect there (requests) or answer it themselves (Playwright's router)
CALLBACK = "http://127.0.0.1:8999/callback"


def make_app(tenant_id, audience="portal", client_type="public", redirect_uris=(CALLBACK,), **fields):
    """A registered app (the flow the API route calls); its secret when confidential."""
    from chalicelib.flows import apps
    created = apps.create(tenant_id, apps.AppCreate(name=fields.pop("name", f"{audience.title()} App"),
                                                    audience=audience, client_type=client_type,
                                                    redirect_uris=list(redirect_uris), **fields),
                          actor="test", ip=None)
    return created


def registered_portal_user(app, http, tenant, password=PORTAL_PASSWORD):
    """A customer invited and registered through the API: their email."""
    t = tenant.admin_token
    email = f"home.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Harper", "emails": [email]}, token=t)[1]
    status, body = http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email},
                             token=t)
    assert status in (200, 201, 202), body
    drain(app)
    [link] = links_to(email, "/register")
    status, session = http.post("/v1/portal/register", {"token": link.split("token=")[1], "password": password})
    assert status == 200, session
    return email


class Browser:
    """A cookie jar that follows the hosted pages' redirects (but not the one back to the app)."""

    def __init__(self, base):
        self.base = base
        self.http = requests.Session()

    def get(self, url, **kw):
        return self.http.get(url if url.startswith("http") else self.base + url, allow_redirects=False, **kw)

    def follow(self, response):
        """Follows redirects while they stay on the provider; returns the last response (a page, or the redirect
        to the app)."""
        while True:
            if response.status_code in (302, 303) and self._ours(response.headers["Location"]):
                response = self.get(self._absolute(response.headers["Location"]))
            elif response.status_code == 200 and response.headers.get("Refresh", "").startswith("0; url="):
                response = self.get(self._absolute(response.headers["Refresh"][len("0; url="):]))
            else:
                return response

    def submit(self, page, fields):
        """Posts the page's form (its action and CSRF token) with `fields`."""
        html = page.text
        action = re.search(r'<form[^>]*action="([^"]*)"', html).group(1).replace("&amp;", "&")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        return self.http.post(self._absolute(action), data={"csrf_token": csrf, **fields}, allow_redirects=False,
                              headers={"Origin": self.base})

    def _absolute(self, location):
        return location if location.startswith("http") else self.base + location

    def _ours(self, location):
        return not location.startswith("http") or location.startswith(self.base)


def code_of(response):
    """The code and state the provider sent back to the app (its 302 to the redirect URI)."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    query = parse_qs(urlparse(response.headers["Location"]).query)
    return {k: v[0] for k, v in query.items()}
