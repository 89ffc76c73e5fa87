"""Known and unknown identities get the same answer in the same time (DESIGN "Abuse"; issue 8).

For every public endpoint that names an identity (staff and portal sign-in, portal sign-up, portal reset,
staff code reset start / send-code / verify, portal refresh, partner token), calls for a known identity and for
an unknown one are interleaved pair by pair (the order alternates, so load from the other test worker hits both
series alike). Every answer must be identical in status and body (random parts such as a flow id aside) and the
two medians within 20 % of each other. Timing is measured around the whole in-process request, never slept.

Rate limits stay on: every call comes from its own client IP, unknown identities are fresh each time, and the
known identity's own counters (lockout, per-identifier throttle) are cleared between calls, outside the timing,
so both series take the same path through the counters. The measured medians are written to
.local/enumeration-timing.json (the README's table comes from there)."""
import gc
import itertools
import json
import secrets
import statistics
import time
import uuid

import pytest
from chalice.local import LambdaEventConverter
from conftest import ROOT, drain, links_to

from chalicelib.core import lockout

PAIRS = 20  # known/unknown pairs per round
ROUNDS = 4  # a round more (its samples added) while the medians are apart: a noisy neighbour, not the code
WARM_UP = 2  # pairs not counted: lazy imports, the dummy hash, clients
MAX_RATIO = 1.2
PORTAL_PASSWORD = "Sunny-Porch-2026"
RESULTS = ROOT / ".local" / "enumeration-timing.json"
_ips = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(1, 255), range(256), range(1, 255)))


@pytest.fixture
def own_ip(monkeypatch):
    """Each call from a fresh client IP (chalice's local gateway puts this one in every event)."""
    monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", "127.0.0.1")

    def next_ip():
        LambdaEventConverter.LOCAL_SOURCE_IP = next(_ips)
    return next_ip


def _shape(body):
    if isinstance(body, dict):
        return {k: "<random>" if k == "flow_id" else _shape(v) for k, v in body.items()}
    return body


def _forget_throttle(scope: str, key: str) -> None:
    from chalicelib.core.models import Counter
    Counter(lockout._throttle_key(scope, key)).delete()


def compare(name, known, unknown, next_ip):
    """known(i) / unknown(i) prepare one call (untimed) and return it as a function of no arguments that makes
    the request and returns (status, body). Returns the medians in ms; asserts the answers and the ratio."""
    times = {"known": [], "unknown": []}
    answers = {"known": set(), "unknown": set()}
    ratio = None
    for round_ in range(ROUNDS):
        for i in range(PAIRS + (WARM_UP if round_ == 0 else 0)):
            order = [("known", known), ("unknown", unknown)]
            if i % 2:
                order.reverse()
            for side, prepare in order:
                call = prepare(f"{round_}-{i}")
                next_ip()
                gc.disable()  # a collection lands on whichever call happens to be running: not its cost
                started = time.perf_counter()
                status, body = call()
                elapsed = time.perf_counter() - started
                gc.enable()
                answers[side].add(json.dumps([status, _shape(body)], sort_keys=True))
                if round_ or i >= WARM_UP:
                    times[side].append(elapsed * 1000)
        medians = {side: statistics.median(samples) for side, samples in times.items()}
        ratio = max(medians.values()) / min(medians.values())
        if ratio <= MAX_RATIO:
            break
    assert len(answers["known"]) == 1 and answers["known"] == answers["unknown"], answers
    figures = {"known_ms": round(medians["known"], 1), "unknown_ms": round(medians["unknown"], 1),
               "ratio": round(medians["known"] / medians["unknown"], 3), "calls": len(times["known"]),
               "answer": json.loads(answers["known"].pop())[0]}
    _save(name, figures)
    assert ratio <= MAX_RATIO, (name, figures)
    return figures


def _save(name, figures):
    RESULTS.parent.mkdir(exist_ok=True)
    try:
        saved = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        saved = {}
    saved[name] = figures
    RESULTS.write_text(json.dumps(saved, indent=2, sort_keys=True))


# --- fixtures: a tenant with self sign-up, a registered portal user, staff, a partner -------------------------

@pytest.fixture
def portal(app, http, tenant):
    """An active portal user (email on a customer record) in a tenant that allows self sign-up."""
    t = tenant.admin_token
    email = f"known.{uuid.uuid4().hex[:8]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Known Household", "emails": [email]}, token=t)[1]
    assert http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": []},
                     token=t)[0] == 200
    assert http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email,
                                                "access": "billing"}, token=t)[0] in (200, 201, 202)
    drain(app)
    [link] = links_to(email, "/register")
    token = link.split("token=", 1)[1]
    status, session = http.post("/v1/portal/register", {"token": token, "password": PORTAL_PASSWORD})
    assert status == 200, session
    return {"email": email, "tenant_id": tenant.id, "session": session}


def ghost_email(tenant):
    return f"ghost.{uuid.uuid4().hex[:10]}@{tenant.id}.example"


@pytest.fixture(autouse=True)
def delivered_afterwards(app, monkeypatch):
    """What the calls queued is delivered at the end (and at once: no send-rate spacing)."""
    yield
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "1000")
    drain(app)


# --- sign-in ------------------------------------------------------------------------------------------------

def test_staff_sign_in(http, tenant, own_ip):
    def known(_):
        lockout.clear("staff", tenant.id, tenant.admin_username)
        return lambda: tenant.sign_in(password="Wrong-Password-99")

    def unknown(i):
        name = f"nobody-{uuid.uuid4().hex[:8]}"
        return lambda: tenant.sign_in(username=name, password="Wrong-Password-99")
    compare("staff sign-in (wrong password / unknown username)", known, unknown, own_ip)


def test_portal_sign_in(http, tenant, portal, own_ip):
    def sign_in(email):
        return lambda: http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email,
                                                        "password": "Wrong-Password-99"})

    def known(_):
        lockout.clear("portal", tenant.id, portal["email"])
        return sign_in(portal["email"])
    compare("portal sign-in (wrong password / unknown email)", known, lambda _: sign_in(ghost_email(tenant)),
            own_ip)


# --- portal sign-up and reset --------------------------------------------------------------------------------

def _portal_post(http, tenant, path, scope, email):
    _forget_throttle(scope, f"{tenant.id}#{email}")
    return lambda: http.post(path, {"tenant_id": tenant.id, "email": email})


def test_portal_sign_up_with_an_account(http, tenant, portal, own_ip):
    compare("portal sign-up (has an account / unknown email)",
            lambda _: _portal_post(http, tenant, "/v1/portal/sign-up", "portal-signup-email", portal["email"]),
            lambda _: _portal_post(http, tenant, "/v1/portal/sign-up", "portal-signup-email", ghost_email(tenant)),
            own_ip)


def test_portal_sign_up_on_a_record(http, tenant, portal, own_ip):
    """An email on a customer record without an account (it gets an invitation) against one on no record."""
    t = tenant.admin_token
    emails = [f"listed.{i}.{uuid.uuid4().hex[:6]}@{tenant.id}.example" for i in range(PAIRS * ROUNDS + WARM_UP)]
    for start in range(0, len(emails), 20):
        status, body = http.post("/v1/customers", {"name": f"Listed {start}", "emails": emails[start:start + 20]},
                                 token=t)
        assert status == 201, body
    listed = iter(emails)
    compare("portal sign-up (on a record, no account / unknown email)",
            lambda _: _portal_post(http, tenant, "/v1/portal/sign-up", "portal-signup-email", next(listed)),
            lambda _: _portal_post(http, tenant, "/v1/portal/sign-up", "portal-signup-email", ghost_email(tenant)),
            own_ip)


def test_portal_reset_request(http, tenant, portal, own_ip):
    compare("portal reset link (has an account / unknown email)",
            lambda _: _portal_post(http, tenant, "/v1/portal/password-reset", "portal-reset-email", portal["email"]),
            lambda _: _portal_post(http, tenant, "/v1/portal/password-reset", "portal-reset-email",
                                   ghost_email(tenant)),
            own_ip)


# --- staff code reset ----------------------------------------------------------------------------------------

STAFF_RESET = "/v1/staff/password-reset"


@pytest.fixture
def staff(tenant):
    from staff_helpers import staff_member, unique_mobile
    person, _ = staff_member(tenant, kind="employee", mobile=unique_mobile())
    return person


def _identifiers(person, kind):
    from staff_helpers import unique_mobile
    if kind == "username":
        return person.username, lambda: f"nobody-{uuid.uuid4().hex[:8]}"
    if kind == "email":
        return person.email, lambda: f"nobody.{uuid.uuid4().hex[:8]}@crew.example"
    return person.mobile, unique_mobile


def _start(http, tenant, identifier):
    _forget_throttle("staff-reset-start_identifier", f"{tenant.id}#{identifier}")
    return lambda: http.post(f"{STAFF_RESET}/start", {"tenant_id": tenant.id, "identifier": identifier})


@pytest.mark.parametrize("kind", ["username", "email", "mobile"])
def test_staff_reset_start(http, tenant, staff, own_ip, kind):
    mine, other = _identifiers(staff, kind)
    compare(f"staff reset start by {kind} (known / unknown)", lambda _: _start(http, tenant, mine),
            lambda _: _start(http, tenant, other()), own_ip)


def _flow(http, tenant, identifier, next_ip, send=False):
    next_ip()
    status, body = _start(http, tenant, identifier)()
    assert status == 202, body
    if send:
        next_ip()
        assert http.post(f"{STAFF_RESET}/send-code", {"flow_id": body["flow_id"]})[0] == 202
    return body["flow_id"]


def test_staff_reset_send_code(http, tenant, staff, own_ip):
    def send(identifier):
        flow = _flow(http, tenant, identifier, own_ip)
        return lambda: http.post(f"{STAFF_RESET}/send-code", {"flow_id": flow})
    compare("staff reset send-code (known / unknown)", lambda _: send(staff.username),
            lambda _: send(f"nobody-{uuid.uuid4().hex[:8]}"), own_ip)


def test_staff_reset_verify(http, tenant, staff, own_ip):
    def verify(identifier):
        flow = _flow(http, tenant, identifier, own_ip, send=True)
        return lambda: http.post(f"{STAFF_RESET}/verify", {"flow_id": flow, "code": "Wrong123"})
    compare("staff reset verify, wrong code (known / unknown)", lambda _: verify(staff.username),
            lambda _: verify(f"nobody-{uuid.uuid4().hex[:8]}"), own_ip)


# --- token endpoints ------------------------------------------------------------------------------------------

def _portal_user(portal):
    from chalicelib.flows.portal import invitations
    return invitations.find_user(portal["tenant_id"], portal["email"])


def test_portal_refresh_with_a_spent_token(http, portal, own_ip):
    """A refresh token that was issued and already used (its session rotated on) against one never issued."""
    from chalicelib.flows.portal import portal_sessions
    user = _portal_user(portal)

    def known(_):
        old = portal_sessions.start(user)["refresh_token"]
        portal_sessions.refresh(old, "10.0.0.1")
        return lambda: http.post("/v1/portal/token/refresh", {"refresh_token": old})

    def unknown(_):
        token = secrets.token_urlsafe(32)
        return lambda: http.post("/v1/portal/token/refresh", {"refresh_token": token})
    compare("portal refresh (spent token / never issued)", known, unknown, own_ip)


def test_portal_refresh_after_sign_out(http, portal, own_ip):
    """A refresh token of a session that was signed out against one never issued."""
    from chalicelib.flows.portal import portal_sessions
    user = _portal_user(portal)

    def known(_):
        session = portal_sessions.start(user)
        assert http.post("/v1/portal/sign-out", token=session["access_token"])[0] == 204
        return lambda: http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})

    def unknown(_):
        token = secrets.token_urlsafe(32)
        return lambda: http.post("/v1/portal/token/refresh", {"refresh_token": token})
    compare("portal refresh (signed-out session / never issued)", known, unknown, own_ip)


def test_partner_token(http, tenant, own_ip):
    from ops import partner_portals
    portal, _ = partner_portals.create_portal(f"Timing {uuid.uuid4().hex[:6]}", ["view_customer"], "v1", "Agreement.\n",
                                       portal_id="p-" + uuid.uuid4().hex[:10])

    def token(client_id):
        _forget_throttle("partner-token-client", client_id)  # the known client's counter, as a fresh one's
        return lambda: http.post("/v1/partner/token", {"client_id": client_id, "client_secret": "Wrong-Secret-1234",
                                                       "tenant_id": tenant.id})
    compare("partner token (known client, wrong secret / unknown client)", lambda _: token(portal.client_id),
            lambda _: token("c-" + uuid.uuid4().hex[:12]), own_ip)


def table(saved: dict) -> str:
    """The README's table from .local/enumeration-timing.json: `python tests/test_enumeration_timing.py`."""
    rows = ["| endpoint (known / unknown) | answer | known median | unknown median | ratio | calls each |",
            "|---|---|---|---|---|---|"]
    for name, f in sorted(saved.items()):
        endpoint, _, cases = name.partition(" (")
        rows.append(f"| {endpoint} ({cases} | {f['answer']} | {f['known_ms']:.1f} ms | {f['unknown_ms']:.1f} ms | "
                    f"{f['ratio']:.2f} | {f['calls']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(json.loads(RESULTS.read_text())))
