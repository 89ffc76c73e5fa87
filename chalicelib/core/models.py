"""PynamoDB models, one per table of infra/template.json. Every tenant-owned table has `tenant_id` as its
hash key, so a query can only ever read one tenant's data: the tenant always comes from the caller's token.

Times are epoch seconds (numbers); expiry is always checked in code (`expires_at < now`) because DynamoDB TTL
deletes late (and moto never does)."""
import time
from functools import lru_cache
from typing import Any, cast

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core import config


def now() -> int:
    return int(time.time())


def now_ms() -> int:
    return int(time.time() * 1000)


def _meta(short: str):
    return type("Meta", (), {"table_name": config.table_name(short), "region": config.region()})


def string_list(**kwargs: Any) -> "ListAttribute[str]":
    """ListAttribute(of=UnicodeAttribute): a list of strings. PynamoDB types its items as the attribute class
    given in `of`, not as the str values they are; the cast says what they are."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **kwargs))


class Tenant(Model):
    Meta = _meta("tenants")
    tenant_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | disabled
    self_signup = BooleanAttribute(default=False)
    third_party_signin = string_list(default=list)
    # Bumped in the same transaction as every change that takes away an admin, so two admins cannot each
    # remove the other at once and leave the business with none (staff_accounts.patch_person).
    admin_changes = NumberAttribute(default=0)
    created_at = NumberAttribute(default=now)


class DueIndex(GlobalSecondaryIndex):
    """The people the schedule has something to do for, by when (expiry.py): only people with `due_key` are in
    it (sparse), and only keys are projected, so a person's other writes never write the index."""
    class Meta:
        index_name = "by-due"
        projection = KeysOnlyProjection()
    due_key = UnicodeAttribute(hash_key=True)  # "due"
    due_at = NumberAttribute(range_key=True)


class Person(Model):
    """An employee or technician, and their staff account once they have one."""
    Meta = _meta("people")
    tenant_id = UnicodeAttribute(hash_key=True)
    person_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # employee | technician
    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    mobile = UnicodeAttribute(null=True)
    role = UnicodeAttribute(default="staff")  # admin | office | technician | staff
    permissions = string_list(default=list)
    mobile_access = BooleanAttribute(default=False)
    username = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute(null=True)
    password_set_at = NumberAttribute(null=True)
    must_change_password = BooleanAttribute(default=False)
    temporary_password_expires_at = NumberAttribute(null=True)
    # The schedule moves an unused temporary password's hash here: it can never sign in again, but sign-in can
    # still answer `temporary_password_expired` instead of the generic wrong-password answer.
    expired_temporary_hash = UnicodeAttribute(null=True)
    account_status = UnicodeAttribute(default="no_account")  # no_account | invited | active | disabled
    invitation_token_hash = UnicodeAttribute(null=True)  # the one live invitation link (a re-invite replaces it)
    invited_at = NumberAttribute(null=True)
    invitation_expires_at = NumberAttribute(null=True)
    reset_link_token_hash = UnicodeAttribute(null=True)  # the one live admin-sent reset link
    expiry_warning_for = NumberAttribute(null=True)  # the password_set_at the expiry warning was sent for
    # Sessions carry the epoch their sign-in read; ending them all adds one (sessions.py). A number, not a time: a
    # sign-in whose password check overlaps the end cannot outlive it, and no clock needs to agree with another.
    session_epoch = NumberAttribute(null=True)
    # When the schedule next has something to do for the person (a temporary password's or an invitation's
    # expiry, the password-expiry warning), never later than that: set by every write of those fields
    # (expiry.due_actions), removed when nothing is left. due_key is "due" while due_at is set.
    due_key = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    by_due = DueIndex()
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class Claim(Model):
    """A unique value within a tenant (`username#…`, `email#…`, `mobile#…`, `portal-email#…`), owned by one
    record. Written in the same transaction as the record with attribute_not_exists, so the database, not a
    read-then-write, keeps values unique."""
    Meta = _meta("claims")
    tenant_id = UnicodeAttribute(hash_key=True)
    claim = UnicodeAttribute(range_key=True)
    owner_id = UnicodeAttribute()
    created_at = NumberAttribute(default=now)


class Customer(Model):
    Meta = _meta("customers")
    tenant_id = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    emails = string_list(default=list)
    phones = string_list(default=list)
    billing_address = UnicodeAttribute(null=True)
    access_link_hash = UnicodeAttribute(null=True)  # rule 6: the customer's secure access link (hashed)
    access_link_created_at = NumberAttribute(null=True)
    access_link_expires_at = NumberAttribute(null=True)  # set by the business (1-365 days), renewable
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class ByCustomer(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-customer"
        projection = AllProjection()
    customer_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<customer_id>"


class LocationsByCustomer(ByCustomer):
    location_id = UnicodeAttribute(range_key=True)


class ContactsByCustomer(ByCustomer):
    contact_id = UnicodeAttribute(range_key=True)


class Location(Model):
    Meta = _meta("locations")
    tenant_id = UnicodeAttribute(hash_key=True)
    location_id = UnicodeAttribute(range_key=True)
    customer_id = UnicodeAttribute()
    customer_key = UnicodeAttribute()
    by_customer = LocationsByCustomer()
    name = UnicodeAttribute(null=True)
    address = UnicodeAttribute()
    emails = string_list(default=list)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class Contact(Model):
    Meta = _meta("contacts")
    tenant_id = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute(range_key=True)
    customer_id = UnicodeAttribute()
    customer_key = UnicodeAttribute()
    by_customer = ContactsByCustomer()
    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class RecordEmail(Model):
    """Which customer, location and contact records carry an email (DESIGN rule 2), keyed by the email so a
    bulk run can look up 100 emails per BatchGetItem. refs: `customer:<id>`, `location:<id>:<customer_id>`,
    `contact:<id>:<customer_id>`."""
    Meta = _meta("record-emails")
    tenant_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    refs = UnicodeSetAttribute(default=set)


class Grant(MapAttribute):
    customer_id = UnicodeAttribute()
    access = UnicodeAttribute()  # billing | non_billing | none
    contact_id = UnicodeAttribute(null=True)  # limited to one contact (rule 7)
    admin = BooleanAttribute(default=False)


class StatusIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-status"
        projection = AllProjection()
    status_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<status>"
    user_id = UnicodeAttribute(range_key=True)


class PortalUser(Model):
    """A customer portal user: one per email per tenant, holding grants on several customer records. The id is
    derived from the email (portal_user_id), so the item itself is the uniqueness of the email and a bulk run
    finds 100 users per BatchGetItem without a lookup table."""
    Meta = _meta("portal-users")
    tenant_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    email = UnicodeAttribute()
    status = UnicodeAttribute(default="invited")  # invited | active | disabled
    status_key = UnicodeAttribute()
    by_status = StatusIndex()
    grants = ListAttribute(of=Grant, default=list)
    customer_ids = UnicodeSetAttribute(default=set)  # the grants' customers, for filtering the list
    password_hash = UnicodeAttribute(null=True)
    password_set_at = NumberAttribute(null=True)
    invitation_token_hash = UnicodeAttribute(null=True)
    invitation_expires_at = NumberAttribute(null=True)
    reset_link_token_hash = UnicodeAttribute(null=True)  # the one live reset link (a newer one or a reset ends it)
    invite_job = UnicodeAttribute(null=True)  # the run (bulk job or single invitation) that last invited
    last_sent_at = NumberAttribute(null=True)
    delivery_problem = UnicodeAttribute(null=True)  # bouncing | complained
    session_epoch = NumberAttribute(null=True)  # see Person.session_epoch
    linked_identities = UnicodeSetAttribute(null=True)  # "google:<sub>", "microsoft:<sub>"
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class SessionsByUser(GlobalSecondaryIndex):
    """A person's or portal user's sessions, newest last: only session items carry `user_key` (sparse)."""
    class Meta:
        index_name = "by-user"
        projection = AllProjection()
    user_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<subject_kind>#<user_id>"
    created_ms = NumberAttribute(range_key=True)


class Session(Model):
    """Sessions of staff, portal users and access-link holders (chalicelib/core/sessions.py), and the refresh tokens of
    portal sessions. `fam#<id>` is a session (one sign-in; its id is the access token's `sid`); `rt#<sha256>` is
    one refresh token in it. Refresh tokens rotate; presenting a used one means it leaked, and ends the session."""
    Meta = _meta("sessions")
    pk = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    family_id = UnicodeAttribute()
    subject_kind = UnicodeAttribute(default="portal")  # staff | portal | link
    user_key = UnicodeAttribute(null=True)
    by_user = SessionsByUser()
    created_ms = NumberAttribute(default=now_ms)  # when it started (ms); the range key of the by-user index
    expires_at = NumberAttribute()
    ttl = NumberAttribute()
    used_at = NumberAttribute(null=True)
    last_used_at = NumberAttribute(null=True)
    revoked_at = NumberAttribute(null=True)
    ended_by = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(default="password")  # how it started: password | invitation | google | microsoft | access_link
    epoch = NumberAttribute(default=0)  # the account's session_epoch when the sign-in read it
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)


class Token(Model):
    """A single-use token, stored by its SHA-256 only. `used_at` is set by one conditional write."""
    Meta = _meta("tokens")
    token_hash = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # invitation | portal_reset | staff_invite | staff_reset | password_change | …
    tenant_id = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    expires_at = NumberAttribute()
    ttl = NumberAttribute()
    used_at = NumberAttribute(null=True)
    # Staff password-reset flows (kind staff_reset_flow): the current code's hash, its expiry, how many codes
    # were sent and how many verifications were tried (the flow is dead at 5).
    code_hash = UnicodeAttribute(null=True)
    code_expires_at = NumberAttribute(null=True)
    sends = NumberAttribute(default=0)
    attempts = NumberAttribute(default=0)
    revoked = UnicodeAttribute(null=True)  # the error code a revoked link answers with, e.g. invitation_replaced
    data: MapAttribute[str, Any] = MapAttribute(default=dict)
    created_at = NumberAttribute(default=now)


class Job(Model):
    Meta = _meta("jobs")
    tenant_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    status = UnicodeAttribute(default="running")  # queued | running | done | failed
    summary: MapAttribute[str, Any] = MapAttribute(default=dict)
    source = UnicodeAttribute(null=True)  # e.g. the S3 key a bulk run reads
    error = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)


class AuditByTarget(GlobalSecondaryIndex):
    """One subject's trail: the events about it (target), by time."""
    class Meta:
        index_name = "by-trail"
        projection = AllProjection()
    trail_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<target>"
    event_id = UnicodeAttribute(range_key=True)


class AuditByActor(GlobalSecondaryIndex):
    """The events one subject did to another (actor != target; an event about itself is in by-trail)."""
    class Meta:
        index_name = "by-actor"
        projection = AllProjection()
    actor_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<actor>"
    event_id = UnicodeAttribute(range_key=True)


class AuditEvent(Model):
    """Who did what to whom, when, from where. Never holds a password, token or code."""
    Meta = _meta("audit")
    tenant_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)  # "<ms timestamp>#<random>": sorts by time
    at = NumberAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute(null=True)
    target = UnicodeAttribute(null=True)
    ip = UnicodeAttribute(null=True)
    details: MapAttribute[str, Any] = MapAttribute(default=dict)
    trail_key = UnicodeAttribute(null=True)  # "<tenant_id>#<target>" when there is a target
    by_trail = AuditByTarget()
    actor_key = UnicodeAttribute(null=True)  # "<tenant_id>#<actor>" when there is an actor other than the target
    by_actor = AuditByActor()


class Counter(Model):
    """Failure counters and rate limits (sign-in lockout, throttles), expiring with TTL."""
    Meta = _meta("counters")
    counter_key = UnicodeAttribute(hash_key=True)
    # stored as "count"; named otherwise in Python, where `count` would hide Model.count (the item count query)
    hits = NumberAttribute(default=0, attr_name="count")
    window_start = NumberAttribute(default=now)
    locked_until = NumberAttribute(default=0)
    lockouts = NumberAttribute(default=0)
    reason = UnicodeAttribute(null=True)  # failure#… items: why a queued message failed (see dead_letters)
    ttl = NumberAttribute()


ALL_MODELS = (Tenant, Person, Claim, Customer, Location, Contact, RecordEmail, PortalUser, Session, Token, Job,
              AuditEvent, Counter)


def transaction():
    """A DynamoDB transaction (all its writes happen or none); uniqueness claims ride in these."""
    from pynamodb.transactions import TransactWrite
    return TransactWrite(connection=_transaction_connection())


@lru_cache(maxsize=1)
def _transaction_connection():
    """One connection per process: building its botocore client costs ~35 ms, once per bulk chunk otherwise."""
    from pynamodb.connection import Connection
    return Connection(region=config.region())


# --- partner portals (DESIGN rules 18-21) ---------------------------------------------------------------------
# Portals are defined by operators (the console), not by a tenant, so their tables are keyed by portal; what a
# tenant decides about a portal (enable, disable, the agreement it accepted) lives in PartnerEnablement.

class PartnerPortal(Model):
    Meta = _meta("partner-portals")
    portal_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    permissions = string_list(default=list)  # keys of partners.PERMISSIONS
    client_id = UnicodeAttribute()
    agreement_version = UnicodeAttribute()
    agreement_text = UnicodeAttribute()
    secret_rotated_at = NumberAttribute(null=True)  # partner tokens issued before this stop working
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerClient(Model):
    """A portal's API credentials: the secret only as its argon2id hash."""
    Meta = _meta("partner-clients")
    client_id = UnicodeAttribute(hash_key=True)
    portal_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    rotated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerEnablement(Model):
    """One tenant's decision about one portal. The acceptance fields describe the last enable; the version
    attribute turns every enable/disable into a conditional write, so concurrent toggles never lose one."""
    Meta = _meta("partner-enablements")
    tenant_id = UnicodeAttribute(hash_key=True)
    portal_id = UnicodeAttribute(range_key=True)
    enabled = BooleanAttribute(default=False)
    accepted_by = UnicodeAttribute(null=True)  # person_id of the admin
    accepted_by_email = UnicodeAttribute(null=True)  # their email then (the person may change it later)
    accepted_at = NumberAttribute(null=True)
    agreement_version = UnicodeAttribute(null=True)
    agreement_sha256 = UnicodeAttribute(null=True)  # proves which text that version had
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    disabled_by = UnicodeAttribute(null=True)
    disabled_at = NumberAttribute(null=True)
    # Partner tokens carry the generation they were issued in; each disable starts a new one, so a token issued
    # before a disable never works again, even after the portal is enabled again.
    generation = NumberAttribute(default=0)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerUser(Model):
    """A person at the partner (coach, call-centre agent) who works in the portal."""
    Meta = _meta("partner-users")
    portal_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | inactive
    created_at = NumberAttribute(default=now)
