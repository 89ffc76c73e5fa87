"""Scale (issue 19): the schedule reads only what is due, a trail page is one query and full, the tenant comes from
a short per-container cache. DynamoDB requests are counted through botocore, as the live-check test does."""
import botocore.client
import pytest
from conftest import SCHEDULED_EVENT, LambdaContext

from chalicelib.core import due
from chalicelib.core.due import PASSWORD_MAX_AGE_SECONDS
from chalicelib.core.models import Person, now
from chalicelib.flows.staff import people


@pytest.fixture
def dynamodb_calls(monkeypatch):
    """Every DynamoDB request made from here on: (operation, params)."""
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if self.meta.service_model.service_name == "dynamodb":
            calls.append((operation, params))
        return original(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def _back_date(person, **changes):
    """Makes something of the person due now, as the writers would have dated it (the index moves with it)."""
    person.update(actions=[getattr(Person, k).set(v) for k, v in changes.items()]
                  + due.due_actions(person, **changes))


# --- the schedule ----------------------------------------------------------------------------------------------

def people_steps(calls: list) -> list:
    """The schedule's calls but those of its bulk steps (stalled runs in the jobs table; the bulk lane's watch: its
    markers, and the drainer's lease when a line waits)."""
    def bulk(p: dict) -> bool:
        return p.get("TableName", "").endswith(("-jobs", "-send-backlog")) or (
            p.get("Key", {}).get("counter_key", {}).get("S") == "send-bulk-lease")
    return [(op, p) for op, p in calls if not bulk(p)]


def test_the_schedule_reads_only_the_people_that_are_due_and_acts_once(app, tenant, dynamodb_calls):
    at = now()
    crowd = [people.create(tenant.id, kind="employee", name=f"Staff {i}", email=f"s{i}@{tenant.id}.example",
                           password_hash="argon2-hash-of-a-current-password") for i in range(60)]
    crowd += [people.create(tenant.id, kind="technician", name=f"Tech {i}", mobile=f"+1201555{i:04d}")
              for i in range(20)]  # no account: nothing will ever fall due for them
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())  # whatever earlier tests of this process left due
    temporary, invited, aging = crowd[0], crowd[60], crowd[1]
    _back_date(temporary, temporary_password_expires_at=at - 1, must_change_password=True)
    _back_date(invited, account_status="invited", invitation_expires_at=at - 1)
    _back_date(aging, password_set_at=at - PASSWORD_MAX_AGE_SECONDS + 5 * 86400)
    dynamodb_calls.clear()

    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())

    assert {k: v for k, v in result.items() if not k.startswith("bulk_")} == {
        "temporary_passwords_expired": 1, "invitations_expired": 1, "expiry_warnings_sent": 1}
    jobs = [op for op, p in dynamodb_calls if p.get("TableName", "").endswith("-jobs")]
    assert jobs[:1] == ["Query"]  # the stalled-bulk-run step reads its list of running jobs, never scans
    lane = [op for op, p in dynamodb_calls if p.get("TableName", "").endswith("-send-backlog")]
    assert lane == ["Query"]  # the bulk lane's watch reads the active lines' markers, never scans
    dynamodb_calls[:] = people_steps(dynamodb_calls)
    operations = [op for op, _ in dynamodb_calls]
    assert "Scan" not in operations
    [query] = [p for op, p in dynamodb_calls if op == "Query"]
    assert query["IndexName"] == "by-due"
    read = [k["person_id"]["S"] for op, p in dynamodb_calls if op == "BatchGetItem"
            for t in p["RequestItems"].values() for k in t["Keys"]]
    assert sorted(read) == sorted(p.person_id for p in (temporary, invited, aging))  # 3 of the 80
    assert operations.count("GetItem") <= 3  # the warning's message looks up its tenant
    # done is done: the next runs read nothing and act on nobody
    dynamodb_calls.clear()
    assert {k: v for k, v in app.run_schedule(SCHEDULED_EVENT, LambdaContext()).items()
            if not k.startswith("bulk_")} == {"temporary_passwords_expired": 0, "invitations_expired": 0,
                                              "expiry_warnings_sent": 0}
    assert [op for op, p in people_steps(dynamodb_calls)] == ["Query"]
    temporary.refresh(), invited.refresh(), aging.refresh()
    assert temporary.password_hash is None and temporary.due_at is None  # no password left: nothing due
    assert invited.account_status == "no_account" and invited.due_at is None
    assert aging.expiry_warning_for == aging.password_set_at and aging.due_at is None


def test_every_writer_of_what_falls_due_dates_it_in_the_index(app, http, tenant):
    from chalicelib.flows.staff import staff_signin
    person = people.create(tenant.id, kind="employee", name="Writer", email=f"w@{tenant.id}.example",
                           password_hash="argon2-hash")
    assert person.due_key == "due" and person.due_at == person.password_set_at + PASSWORD_MAX_AGE_SECONDS \
        - due.WARN_BEFORE_SECONDS
    staff_signin.set_password(person, "Temporary-Pass-77", must_change=True, temporary_for=3600)
    person.refresh()
    assert person.due_at == person.temporary_password_expires_at
    fresh = people.create(tenant.id, kind="employee", name="Invitee", email=f"i@{tenant.id}.example")
    assert fresh.due_key is None  # no account: not in the index at all
    status, _ = http.post(f"/v1/people/{fresh.person_id}/invite", {}, token=tenant.admin_token)
    assert status in (200, 201, 202)
    fresh.refresh()
    assert fresh.due_key == "due" and fresh.due_at == fresh.invitation_expires_at


# --- audit trails --------------------------------------------------------------------------------------------------

def test_a_trail_page_is_one_query_of_its_own_key_and_full(http, tenant, dynamodb_calls):
    from chalicelib.core import audit
    admin = next(p for p in Person.query(tenant.id) if p.username == tenant.admin_username)
    subject = people.create(tenant.id, kind="employee", name="Watched", email=f"watched@{tenant.id}.example")
    for i in range(30):  # older: 30 events of this person, some by them, some about them, some by them about others
        if i % 3 == 0:
            audit.record(tenant.id, "staff.test", actor=admin.person_id, target=subject.person_id, n=i)
        elif i % 3 == 1:
            audit.record(tenant.id, "staff.test", actor=subject.person_id, target=subject.person_id, n=i)
        else:
            audit.record(tenant.id, "staff.test", actor=subject.person_id, target=f"someone-{i}", n=i)
    for i in range(120):  # newer: other people's events, which a filtered read would wade through first
        audit.record(tenant.id, "staff.other", actor=admin.person_id, target=f"other-{i}")
    dynamodb_calls.clear()
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=10" + (f"&cursor={cursor}" if cursor else "")
        status, body = http.get(f"/v1/people/{subject.person_id}/audit{query}", token=tenant.admin_token)
        assert status == 200, body
        pages += 1
        seen += [item["details"]["n"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert len(body["items"]) == 10  # every page but the last is full
    assert seen == list(range(29, -1, -1)) and pages == 3  # newest first, each once
    trail_reads = [p for op, p in dynamodb_calls if op in ("Query", "Scan") and "audit" in p["TableName"]]
    assert {p.get("IndexName") for p in trail_reads} == {"by-trail", "by-actor"}
    assert len(trail_reads) == 2 * pages  # one query per index per page, none on the tenant's partition
    assert all(p["Limit"] == 11 for p in trail_reads)


# --- the tenant, cached per container ---------------------------------------------------------------------------

def test_a_disabled_tenant_is_refused_everywhere_within_the_cache_time(http, tenant, monkeypatch, dynamodb_calls):
    from chalicelib.core import tenants
    from chalicelib.flows.tenants import set_status
    clock = [1000.0]
    monkeypatch.setattr(tenants, "_clock", lambda: clock[0])
    token = tenant.admin_token  # (a sign-in: it reads the tenant itself)
    assert http.get("/v1/staff/me", token=token)[0] == 200  # the cache now holds the tenant
    dynamodb_calls.clear()
    assert http.get("/v1/staff/me", token=token)[0] == 200
    batch = next(p for op, p in dynamodb_calls if op == "BatchGetItem")  # the live check's one read
    assert len(batch["RequestItems"]) == 2  # session and account only: the tenant came from the cache
    assert all(t["ConsistentRead"] for t in batch["RequestItems"].values())
    elsewhere = dict(tenants._active)  # what another warm container holds
    set_status(tenant.id, "disabled")
    status, body = http.get("/v1/staff/me", token=token)
    assert status == 403 and body["error"]["code"] == "tenant_disabled"  # this container: at once
    tenants._active.update(elsewhere)  # another container, which read the tenant just before the disable
    clock[0] += tenants.CACHE_SECONDS - 1
    assert http.get("/v1/staff/me", token=token)[0] == 200  # still within its cache time
    clock[0] += 1
    status, body = http.get("/v1/staff/me", token=token)
    assert status == 403 and body["error"]["code"] == "tenant_disabled"  # CACHE_SECONDS after: refused there too
    set_status(tenant.id, "active")
