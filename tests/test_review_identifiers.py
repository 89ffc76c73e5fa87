"""Security review, identifiers and links: one person reached through many spellings of an identifier gets at most
a few codes or links an hour (staff code reset, portal reset link); an older portal reset link dies when a newer
one is sent or the password is reset; a portal grant's contact must be on its customer and a contact limit is
removed only when asked for; disabling a portal user ends its sessions for good; a staff username that is an
email address or a mobile number must be the person's own, and `username_taken` is rate-limited like a guess.

Every test plays the attacker: other spellings of the same identifier, concurrent requests, another tenant's ids."""
import uuid

import pytest
from chalice.local import LambdaEventConverter
from conftest import drain, links_to, outbox_for
from staff_helpers import run_together, staff_member, threaded_app, unique_email, unique_mobile

from chalicelib.core import single_use
from chalicelib.core.security.tokens import token_hash
from chalicelib.flows.portal import portal_access
from chalicelib.flows.staff import staff_invitations, staff_recovery

STAFF_RESET = "/v1/staff/password-reset"


def from_ip(ip):
    LambdaEventConverter.LOCAL_SOURCE_IP = ip  # conftest's client_ip fixture restores it after the test


def without_retry_after(answer):
    """(status, body) with the seconds to wait left out (the clock moves between two calls)."""
    status, body = answer
    if isinstance(body, dict) and "error" in body:
        body = {"error": {k: v for k, v in body["error"].items() if k != "retry_after"}}
    return status, body


def spellings(mobile):
    """Ten ways to write one North American mobile number (+1 and ten digits)."""
    d = mobile[2:]
    a, b, c = d[:3], d[3:6], d[6:]
    return [d, f"({a}) {b}-{c}", f"+1 {a} {b} {c}", f"1{d}", f"+1{d}", f"{a}-{b}-{c}", f"{a}.{b}.{c}",
            f"1 ({a}) {b} {c}", f" {d} ", f"+1 ({a}) {b}-{c}"]


def bomb(http, tenant_id, identifiers):
    """What an attacker sees: for each spelling, start and three send-codes (the most one flow allows)."""
    seen = []
    for identifier in identifiers:
        status, started = http.post(f"{STAFF_RESET}/start", {"tenant_id": tenant_id, "identifier": identifier})
        seen.append(("start", status, started.get("error", {}).get("code")))
        if status != 202:
            continue
        for _ in range(staff_recovery.MAX_SENDS):
            status, sent = http.post(f"{STAFF_RESET}/send-code", {"flow_id": started["flow_id"]})
            seen.append(("send", status, sent.get("error", {}).get("code") if isinstance(sent, dict) else None))
    return seen


# --- 1. SMS / email bombing through spellings ------------------------------------------------------------------

def test_ten_spellings_of_one_mobile_send_at_most_the_hourly_cap(app, http, tenant):
    person, _ = staff_member(tenant)  # a technician with only a mobile
    drain(app)
    from_ip("203.0.113.10")
    known = bomb(http, tenant.id, spellings(person.mobile))
    from_ip("203.0.113.11")
    unknown = bomb(http, tenant.id, spellings(unique_mobile()))
    assert known == unknown  # the attacker cannot tell the real number from a stranger's
    # the spellings are one identifier: its five starts a quarter-hour, then the same 429 as for anyone
    assert [s for s in known if s[0] == "start"][staff_recovery.LIMITS["start_identifier"][0]][1] == 429
    drain(app)
    texts = [m for m in outbox_for(person.mobile) if "code" in m["body"].lower()]
    # five flows, each with three codes queued: each flow's newest code is sent (a replaced one is not, and does not
    # count against the cap), five in all, the cap
    assert len(texts) == staff_recovery.CODES_PER_PERSON_PER_HOUR
    # other identifiers of the same person, from other IPs: still nothing more this hour
    for ip, identifier in (("203.0.113.12", person.username), ("203.0.113.13", person.username.upper())):
        from_ip(ip)
        status, started = http.post(f"{STAFF_RESET}/start", {"tenant_id": tenant.id, "identifier": identifier})
        assert status == 202
        assert http.post(f"{STAFF_RESET}/send-code", {"flow_id": started["flow_id"]})[0] == 202
    drain(app)
    assert len([m for m in outbox_for(person.mobile) if "code" in m["body"].lower()]) == \
        staff_recovery.CODES_PER_PERSON_PER_HOUR


def test_concurrent_code_deliveries_to_one_person_stop_at_the_cap(app, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flows = [single_use.issue(staff_recovery.FLOW_KIND, tenant.id, person.person_id, 600) for _ in range(20)]
    messages = [{"message_id": uuid.uuid4().hex, "tenant_id": tenant.id, "channel": "email",
                 "render": "staff_reset_code", "flow": token_hash(f), "code": "Abcd2345", "preferred": None,
                 "ip": None} for f in flows]
    results = run_together(20, lambda i: staff_recovery.render_code(messages[i]))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r]) == staff_recovery.CODES_PER_PERSON_PER_HOUR


def test_another_tenants_person_with_the_same_mobile_has_a_cap_of_their_own(app, http, tenant, other_tenant):
    mobile = unique_mobile()
    mine, _ = staff_member(tenant, mobile=mobile)
    theirs, _ = staff_member(other_tenant, mobile=mobile)
    flows = [single_use.issue(staff_recovery.FLOW_KIND, tenant.id, mine.person_id, 600) for _ in range(6)]
    flows.append(single_use.issue(staff_recovery.FLOW_KIND, other_tenant.id, theirs.person_id, 600))
    sent = [staff_recovery.render_code({"message_id": uuid.uuid4().hex, "tenant_id": "x", "flow": token_hash(f),
                                        "code": "Abcd2345", "preferred": None}) for f in flows]
    assert [bool(s) for s in sent] == [True] * 5 + [False, True]


def test_portal_reset_emails_spelt_otherwise_are_one_email_and_capped(app, http, tenant):
    t = tenant.admin_token
    email = f"a.b.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Spelling", "emails": [email]}, token=t)[1]
    http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email}, token=t)
    drain(app)
    [link] = links_to(email, "/register")
    assert http.post("/v1/portal/register", {"token": link.split("token=")[1], "password": "Sunny-Porch-2026"})[0] \
        == 200
    local, domain = email.split("@")
    known = [email.upper(), f"  {email} ", email.capitalize(), f"{local}@{domain.upper()}", email]
    ghost = f"ghost.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    unknown = [ghost.upper(), f"  {ghost} ", ghost.capitalize(), ghost, ghost]
    answers = {}
    for name, series in (("known", known), ("unknown", unknown)):
        from_ip(f"198.51.100.{len(answers) + 1}")
        answers[name] = [without_retry_after(http.post("/v1/portal/password-reset",
                                                       {"tenant_id": tenant.id, "email": e})) for e in series]
    assert answers["known"] == answers["unknown"]
    assert [s for s, _ in answers["known"]] == [202, 202, 202, 429, 429]  # every spelling counted as one
    # a plus-tag or a dot moved is another address: it reaches no one, and is not this user's
    for other in (f"{local}+x@{domain}", f"{local.replace('.', '')}@{domain}"):
        assert http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": other})[0] == 202
    drain(app)
    assert len(links_to(email, "/reset-password")) == 3
    # and whatever gets past the per-email limit (concurrently too), delivery stops at the per-user cap
    message = {"tenant_id": tenant.id, "email": email, "ip": None}
    sent = run_together(10, lambda i: portal_access.render_reset({**message, "message_id": uuid.uuid4().hex}))
    assert not [s for s in sent if isinstance(s, Exception)], sent
    assert len([s for s in sent if s]) == portal_access.RESET_LINKS_PER_USER_PER_HOUR - 3


# --- 2. an older portal reset link ends when a newer one is sent or the password is reset ------------------------

PORTAL_PASSWORD = "Sunny-Porch-2026"


@pytest.fixture
def portal_user(app, http, tenant):
    t = tenant.admin_token
    email = f"home.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Harper", "emails": [email]}, token=t)[1]
    http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email}, token=t)
    drain(app)
    [link] = links_to(email, "/register")
    status, session = http.post("/v1/portal/register", {"token": link.split("token=")[1], "password": PORTAL_PASSWORD})
    assert status == 200, session
    user_id = http.get("/v1/portal/users", token=t)[1]["items"][0]["user_id"]
    return {"email": email, "admin": t, "customer_id": customer["customer_id"], "user_id": user_id,
            "session": session}


def reset_link(app, http, tenant, email):
    assert http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": email})[0] == 202
    drain(app)
    return links_to(email, "/reset-password")[-1].split("token=")[1]


def complete_portal_reset(http, token, password):
    return http.post("/v1/portal/password-reset/complete", {"token": token, "new_password": password,
                                                            "new_password_confirm": password})


def test_a_newer_reset_link_and_a_completed_reset_end_every_earlier_link(app, http, tenant, portal_user):
    email = portal_user["email"]
    first = reset_link(app, http, tenant, email)
    second = reset_link(app, http, tenant, email)
    status, body = complete_portal_reset(http, first, "Brand-New-2027")
    assert status == 410 and body["error"]["code"] == "link_replaced"
    assert complete_portal_reset(http, second, "Brand-New-2028")[0] == 200
    status, body = complete_portal_reset(http, first, "Brand-New-2029")  # still dead after the reset
    assert status == 410 and body["error"]["code"] == "link_replaced"
    assert complete_portal_reset(http, second, "Brand-New-2029")[1]["error"]["code"] == "token_used"
    assert http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email,
                                            "password": "Brand-New-2028"})[0] == 200
    # a link sent after the reset works (the reset ended the earlier ones, not the later)
    third = reset_link(app, http, tenant, email)
    assert complete_portal_reset(http, third, "Brand-New-2030")[0] == 200


def test_of_links_minted_at_once_only_the_one_on_the_user_works(app, http, tenant, portal_user):
    message = {"tenant_id": tenant.id, "email": portal_user["email"], "ip": None}
    rendered = run_together(4, lambda i: portal_access.render_reset({**message, "message_id": uuid.uuid4().hex}))
    assert not [r for r in rendered if isinstance(r, Exception)], rendered
    tokens = [r["links"][0].split("token=")[1] for r in rendered if r]
    assert len(tokens) == 4
    answers = [complete_portal_reset(http, token, f"Brand-New-203{i}") for i, token in enumerate(tokens)]
    assert sorted(status for status, _ in answers) == [200, 410, 410, 410], answers
    assert {body["error"]["code"] for status, body in answers if status == 410} == {"link_replaced"}


# --- 3. a grant's contact is on its customer; a contact limit goes only when asked ------------------------------

@pytest.fixture
def contact_user(app, http, tenant):
    """A portal user whose email is only on contact `mine` of customer `customer` (a contact-limited grant), that
    customer's other contact, and a contact of another customer of the same business."""
    t = tenant.admin_token
    email = f"contact.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Harper", "emails": [f"owner.{uuid.uuid4().hex[:6]}@x.example"]},
                         token=t)[1]["customer_id"]
    mine = http.post(f"/v1/customers/{customer}/contacts", {"name": "Me", "email": email}, token=t)[1]["contact_id"]
    sibling = http.post(f"/v1/customers/{customer}/contacts", {"name": "Sibling"}, token=t)[1]["contact_id"]
    elsewhere = http.post("/v1/customers", {"name": "Elsewhere"}, token=t)[1]["customer_id"]
    foreign = http.post(f"/v1/customers/{elsewhere}/contacts", {"name": "Foreign"}, token=t)[1]["contact_id"]
    status, user = http.post("/v1/portal/invitations", {"customer_id": customer, "email": email,
                                                        "access": "non_billing"}, token=t)
    assert status == 202 and user["grants"] == [{"customer_id": customer, "access": "non_billing",
                                                 "contact_id": mine, "admin": False}], user
    return {"admin": t, "user_id": user["user_id"], "customer": customer, "mine": mine, "sibling": sibling,
            "foreign": foreign, "elsewhere": elsewhere}


def patch_grant(http, c, **grant):
    return http.patch(f"/v1/portal/users/{c['user_id']}",
                      {"grants": [{"customer_id": c["customer"], "access": "non_billing", **grant}]}, token=c["admin"])


def test_a_grant_without_contact_id_keeps_its_contact_limit(http, contact_user):
    c = contact_user
    status, body = patch_grant(http, c)
    assert status == 200 and body["grants"][0]["contact_id"] == c["mine"], body
    status, body = patch_grant(http, c, admin=True)  # customer admin within the same limit: not a widening
    assert status == 200 and body["grants"][0]["contact_id"] == c["mine"], body
    status, body = patch_grant(http, c, contact_id=None)  # an explicit null is no widening either
    assert status == 200 and body["grants"][0]["contact_id"] == c["mine"], body


def test_a_grants_contact_must_be_on_its_customer(http, tenant, other_tenant, contact_user):
    c = contact_user
    other_customer = http.post("/v1/customers", {"name": "Theirs"}, token=other_tenant.admin_token)[1]["customer_id"]
    theirs = http.post(f"/v1/customers/{other_customer}/contacts", {"name": "Theirs"},
                       token=other_tenant.admin_token)[1]["contact_id"]
    for contact_id in (c["foreign"], theirs, "no-such-contact"):
        status, body = patch_grant(http, c, contact_id=contact_id)
        assert status == 400, body
        assert body["error"]["code"] == "contact_not_on_customer" and body["error"]["field"] == "grants"
    # a contact of the customer that the user's email is not on: not the user's to see
    status, body = patch_grant(http, c, contact_id=c["sibling"])
    assert status == 400 and body["error"]["code"] == "email_not_on_record", body
    status, user = http.get(f"/v1/portal/users/{c['user_id']}", token=c["admin"])
    assert user["grants"][0]["contact_id"] == c["mine"]  # nothing was changed by the refusals
    assert patch_grant(http, c, contact_id=c["mine"])[0] == 200


def test_removing_a_contact_limit_is_explicit_and_audited(http, tenant, contact_user):
    c = contact_user
    status, body = patch_grant(http, c, contact_id=c["mine"], whole_customer=True)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = patch_grant(http, c, whole_customer=True, admin=True)
    assert status == 200 and body["grants"] == [{"customer_id": c["customer"], "access": "non_billing",
                                                 "admin": True}], body
    from chalicelib.core.models import AuditEvent
    widened = [e for e in AuditEvent.query(tenant.id) if e.action == "portal.grant_widened"]
    assert len(widened) == 1 and widened[0].target == c["user_id"]
    assert widened[0].details["customer_id"] == c["customer"] and widened[0].details["contact_id"] == c["mine"]
    status, body = patch_grant(http, c, contact_id=c["mine"])  # narrowing again is a plain change
    assert status == 200 and body["grants"][0]["contact_id"] == c["mine"]


def test_a_billing_users_grant_may_be_narrowed_to_a_contact_of_the_customer_only(http, tenant):
    t = tenant.admin_token
    email = f"owner.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Owner", "emails": [email]}, token=t)[1]["customer_id"]
    contact = http.post(f"/v1/customers/{customer}/contacts", {"name": "Kid"}, token=t)[1]["contact_id"]
    other = http.post("/v1/customers", {"name": "Other"}, token=t)[1]["customer_id"]
    foreign = http.post(f"/v1/customers/{other}/contacts", {"name": "F"}, token=t)[1]["contact_id"]
    user_id = http.post("/v1/portal/invitations", {"customer_id": customer, "email": email}, token=t)[1]["user_id"]
    grant = {"customer_id": customer, "access": "billing"}
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [{**grant, "contact_id": foreign}]}, token=t)
    assert status == 400 and body["error"]["code"] == "contact_not_on_customer"
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [{**grant, "contact_id": contact}]}, token=t)
    assert status == 200 and body["grants"][0]["contact_id"] == contact
    # and back to the whole customer only when said so
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [grant]}, token=t)
    assert status == 200 and body["grants"][0]["contact_id"] == contact
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [{**grant, "whole_customer": True}]},
                              token=t)
    assert status == 200 and "contact_id" not in body["grants"][0]


def test_the_patch_route_documents_its_grant_errors(http):
    spec = http.get("/v1/openapi.json")[1]
    patch = spec["paths"]["/v1/portal/users/{user_id}"]["patch"]
    assert "contact_not_on_customer" in patch["x-error-codes"] and "400" in patch["responses"]
    grant = spec["components"]["schemas"]["GrantIn"]["properties"]
    assert "whole_customer" in grant and "contact_id" in grant


# --- 4. disabling a portal user ends its sessions for good ----------------------------------------------------------

def test_disabling_a_portal_user_ends_its_sessions_for_good(http, tenant, portal_user):
    u = portal_user
    status, signed_in = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": u["email"],
                                                         "password": PORTAL_PASSWORD})
    assert status == 200
    for status_ in ("disabled", "active"):
        assert http.patch(f"/v1/portal/users/{u['user_id']}", {"status": status_}, token=u["admin"])[0] == 200
    for session in (signed_in, u["session"]):
        status, body = http.get("/v1/portal/me", token=session["access_token"])
        assert status == 401 and body["error"]["code"] == "session_ended", body
        status, body = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
        assert status == 401 and body["error"]["code"] == "invalid_refresh_token", body
    status, fresh = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": u["email"],
                                                     "password": PORTAL_PASSWORD})
    assert status == 200 and http.get("/v1/portal/me", token=fresh["access_token"])[0] == 200


# --- 5. username squatting --------------------------------------------------------------------------------------

INVITEE_PASSWORD = "Invited-Person-Pass-7"


def invitation(app, http, tenant, **fields):
    """A person invited by email; returns (person_id, email, token of the accept link)."""
    email = unique_email("invitee")
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Newcomer", "email": email, **fields},
                               token=tenant.admin_token)
    assert status == 201, person
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=tenant.admin_token)[0] == 202
    drain(app)
    link = links_to(email, "/staff/accept-invite?token=")[-1]
    return person["person_id"], email, link.split("token=")[1]


def accept(http, token, username):
    return http.post("/v1/staff/accept-invite", {"token": token, "username": username, "password": INVITEE_PASSWORD})


def test_a_username_that_is_an_email_or_a_mobile_must_be_the_persons_own(app, http, tenant):
    colleague, _ = staff_member(tenant, kind="employee", mobile=unique_mobile())
    mobile = unique_mobile()
    _, email, token = invitation(app, http, tenant, mobile=mobile)
    d = colleague.mobile[2:]
    squats = [colleague.email, colleague.email.upper(), f"  {colleague.email}", "someone@elsewhere.example",
              d, f"1{d}", f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}", colleague.mobile]
    for squat in squats:
        status, body = accept(http, token, squat)
        assert status == 400, (squat, body)
        assert body["error"]["code"] == "invalid_username" and body["error"]["field"] == "username", body
        assert "your own" in body["error"]["message"]
    # one's own mobile number, in any spelling, is fine
    d = mobile[2:]
    status, body = accept(http, token, f"{d[:3]}-{d[3:6]}-{d[6:]}")
    assert status == 200, body
    assert tenant.sign_in(f"{d[:3]}-{d[3:6]}-{d[6:]}", INVITEE_PASSWORD)[0] == 200


def test_an_admin_cannot_give_a_colleagues_email_as_a_username_either(http, tenant):
    colleague, _ = staff_member(tenant, kind="employee")
    status, person = http.post("/v1/people", {"kind": "technician", "name": "T", "mobile": unique_mobile()},
                               token=tenant.admin_token)
    status, body = http.post(f"/v1/people/{person['person_id']}/account",
                             {"username": colleague.email, "password": "Given-Password-1357"},
                             token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "invalid_username"


def test_sign_in_by_email_finds_the_person_whose_email_it_is(http, tenant):
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    victim_email = unique_email("victim")
    victim = people.create(tenant.id, kind="employee", name="Victim", email=victim_email, username="victim.own",
                           password_hash=passwords.hash_password("Victim-Password-123"))
    # a squat from before usernames were checked: the victim's email as someone else's username
    people.create(tenant.id, kind="employee", name="Squatter", email=unique_email("squatter"),
                  username=victim_email, password_hash=passwords.hash_password("Squatter-Password-123"))
    for spelling in (victim_email, victim_email.upper(), f" {victim_email} "):
        status, body = tenant.sign_in(spelling, "Victim-Password-123")
        assert status == 200, (spelling, body)
        assert http.get("/v1/staff/me", token=body["access_token"])[1]["person_id"] == victim.person_id
    status, body = tenant.sign_in(victim_email, "Squatter-Password-123")
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    assert tenant.sign_in("victim.own", "Victim-Password-123")[0] == 200


def test_find_by_username_reads_the_same_for_known_and_unknown_identifiers(tenant, monkeypatch):
    from chalicelib.core.models import Claim, Person
    from chalicelib.flows.staff import people
    person, _ = staff_member(tenant, kind="employee")
    calls = []
    for model, name in ((Claim, "batch_get"), (Claim, "get"), (Person, "get"), (Person, "batch_get")):
        original = getattr(model, name)

        def counting(*args, _original=original, _name=f"{model.__name__}.{name}", **kwargs):
            calls.append(_name)
            result = _original(*args, **kwargs)
            return list(result) if _name.endswith("batch_get") else result
        monkeypatch.setattr(model, name, counting)
    reads = {}
    for identifier in (person.email, unique_email("ghost"), person.username, f"ghost-{uuid.uuid4().hex[:6]}"):
        calls.clear()
        found = people.find_by_username(tenant.id, identifier)
        reads[identifier] = (sorted(calls), found.person_id if found else None)
    assert len({tuple(calls_) for calls_, _ in reads.values()}) == 1, reads
    assert [found for _, found in reads.values()] == [person.person_id, None, person.person_id, None]


def test_username_taken_answers_are_limited_per_invitation(app, http, tenant):
    taken = [staff_member(tenant, username=f"taken-{uuid.uuid4().hex[:6]}")[0].username for _ in range(7)]
    _, _, token = invitation(app, http, tenant)
    answers = []
    for i, name in enumerate(taken):
        from_ip(f"192.0.2.{i + 1}")  # one IP each: the limit is the invitation's
        status, body = accept(http, token, name)
        answers.append((status, body["error"]["code"]))
    limit, _window = staff_invitations.USERNAME_TAKEN_PER_INVITATION
    assert answers == [(409, "username_taken")] * limit + [(429, "too_many_requests")] * (len(taken) - limit)
    assert accept(http, token, "free.name.here")[0] == 200  # the invitation itself still works


def test_username_taken_answers_count_as_wrong_guesses_of_the_ip(app, http, tenant, monkeypatch):
    monkeypatch.setenv("PORTAL_FAILED_GUESSES_PER_IP", "3")
    taken = [staff_member(tenant, username=f"taken-{uuid.uuid4().hex[:6]}")[0].username for _ in range(4)]
    _, _, token = invitation(app, http, tenant)
    from_ip("192.0.2.200")
    for name in taken[:3]:
        assert accept(http, token, name)[1]["error"]["code"] == "username_taken"
    status, body = accept(http, token, "free.name.here")
    assert status == 429 and "network" in body["error"]["message"], body
    from_ip("192.0.2.201")
    assert accept(http, token, taken[3])[1]["error"]["code"] == "username_taken"
    assert accept(http, token, "free.name.here")[0] == 200


def test_concurrent_tries_hear_username_taken_no_more_often(app, http, tenant):
    taken = [staff_member(tenant, username=f"taken-{uuid.uuid4().hex[:6]}")[0].username for _ in range(10)]
    _, _, token = invitation(app, http, tenant)
    with threaded_app(app):
        results = run_together(10, lambda i: accept(http, token, taken[i]))
    assert not [r for r in results if isinstance(r, Exception)], results
    codes = [body["error"]["code"] for _, body in results]
    # (concurrent tries mostly meet the link held by another: token_used, which gives a taken name away neither)
    assert codes.count("username_taken") <= staff_invitations.USERNAME_TAKEN_PER_INVITATION[0], codes
    assert set(codes) <= {"username_taken", "token_used", "too_many_requests"}, codes
