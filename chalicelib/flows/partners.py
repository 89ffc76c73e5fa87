"""Partner portals (DESIGN rules 18-21). Operators define portals with the console (ops/partner_portals.py); a tenant's
admin enables one by accepting its legal agreement; the partner then exchanges its client credentials for a
short-lived token per tenant. The token alone is never enough: `check_access` re-reads the enablement and the
portal on every partner call, so a disable (or a withdrawn permission) stops the very next call."""
import hashlib
import re
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError

from chalicelib.core import audit, lockout, tenants
from chalicelib.core.errors import Conflict, Error, Forbidden, Invalid, NotFound, Unauthenticated
from chalicelib.core.models import (
    Location,
    PartnerClient,
    PartnerEnablement,
    PartnerPortal,
    PartnerUser,
    Person,
    now,
    transaction,
)
from chalicelib.core.paging import iso, iso_at, make_cursor, page_args
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine
from chalicelib.flows.directory import LocationOut, location_out

# The fixed catalogue a portal's permissions come from (rule 18), in the order a tenant sees them.
PERMISSIONS = {
    "view_alerts": "View Alerts",
    "view_customer": "View Customer",
    "view_customer_statement": "View Customer Statement",
    "view_location": "View Location",
    "view_estimate": "View Estimate",
    "view_invoice": "View Invoice",
    "view_job": "View Job",
    "book_job": "Book Job",
    "access_settings": "Access Settings",
}
TOKEN_SECONDS = 10 * 60
# Token requests per minute. Secrets are 256-bit so guessing is hopeless; the limits bound the argon2 work a
# caller can make us do. A partner caches one token per tenant for its lifetime, so these leave room for hundreds.
TOKEN_LIMIT_PER_CLIENT = 60
TOKEN_LIMIT_PER_IP = 120
PORTAL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


# Errors are made afresh for every raise: one kept at module level keeps the traceback of every raise (each one
# adds its frames), and with them the client secrets that were sent.
def invalid_client() -> Error:
    return Unauthenticated("invalid_client", "The client id or client secret is not right.")


def not_enabled() -> Error:
    return Forbidden("partner_access_disabled", "This business has not enabled your partner portal.")


Id = Annotated[OneLine, Field(min_length=1, max_length=128)]


# --- shapes of the API ----------------------------------------------------------------------------------------

class EnableBody(Strict):
    # Both optional on purpose: a missing acceptance answers agreement_not_accepted, not a validation error.
    accept: StrictBool = False
    agreement_version: Annotated[OneLine, Field(max_length=64)] | None = None


class PartnerTokenRequest(Shape):
    model_config = ConfigDict(extra="forbid")  # not stripped: a secret is compared exactly as sent
    client_id: Id
    client_secret: Annotated[str, Field(min_length=1, max_length=256)]
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)]


class PartnerToken(Shape):
    access_token: str
    token_type: str
    expires_in: int
    permissions: list[str]


class PartnerPermission(Shape):
    key: str
    label: str


class PartnerEnablementOut(Shape):
    accepted_by: str | None = None
    accepted_by_email: str | None = None
    accepted_at: str | None = None
    agreement_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    disabled_by: str | None = None
    disabled_at: str | None = None


class PartnerPortalOut(Shape):
    portal_id: str
    name: str
    permissions: list[PartnerPermission]
    agreement_version: str  # the current one; compare with enablement.agreement_version (the one accepted)
    enabled: bool
    enablement: PartnerEnablementOut | None = None


class PartnerPortalList(Shape):
    items: list[PartnerPortalOut]


class PartnerAgreement(Shape):
    portal_id: str
    version: str
    text: str


class PartnerUserOut(Shape):
    user_id: str
    name: str
    email: str
    status: str
    created_at: str


class PartnerUserPage(Shape):
    items: list[PartnerUserOut]
    next_cursor: str | None = None


class PartnerScope(Shape):
    portal_id: str
    name: str
    tenant_id: str
    permissions: list[PartnerPermission]


class PartnerLocationPage(Shape):
    items: list[LocationOut]
    next_cursor: str | None = None


# --- reading ----------------------------------------------------------------------------------------------------

def get_item(model, *key):
    try:
        return model.get(*key, consistent_read=True)
    except DoesNotExist:
        return None


def get_portal(portal_id: str) -> PartnerPortal:
    # An id that could never exist is not sent to DynamoDB (an over-long key would be its error, our 500).
    portal = get_item(PartnerPortal, portal_id) if PORTAL_ID.match(portal_id) else None
    if portal is None:
        raise NotFound("partner_portal_not_found", "No such partner portal.")
    return portal


def permissions_out(keys) -> list[PartnerPermission]:
    return [PartnerPermission(key=k, label=label) for k, label in PERMISSIONS.items() if k in set(keys or ())]


def portal_out(portal: PartnerPortal, e: PartnerEnablement | None) -> PartnerPortalOut:
    enablement = None
    if e is not None:
        enablement = PartnerEnablementOut(
            accepted_by=e.accepted_by, accepted_by_email=e.accepted_by_email, accepted_at=iso(e.accepted_at),
            agreement_version=e.agreement_version, ip=e.ip, user_agent=e.user_agent, disabled_by=e.disabled_by,
            disabled_at=iso(e.disabled_at))
    return PartnerPortalOut(portal_id=portal.portal_id, name=portal.name,
                            permissions=permissions_out(portal.permissions), agreement_version=portal.agreement_version,
                            enabled=bool(e and e.enabled), enablement=enablement)


def _take(results, limit: int, range_attr: str) -> tuple[list, str | None]:
    """The first `limit` items of a (filtered) query and the cursor after them: DynamoDB's Limit counts items
    before the filter, so we read on until the page is full."""
    items: list = []
    for item in results:
        if len(items) == limit:
            return items, make_cursor({range_attr: {"S": getattr(items[-1], range_attr)}}, range_attr)
        items.append(item)
    return items, None


def _flag(query: dict, name: str) -> bool:
    value = (query.get(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise Invalid("invalid_request", f"{name} must be true or false.", field=name)
    return value in ("true", "1")


# --- tenant admins ------------------------------------------------------------------------------------------------

def list_for_tenant(tenant_id: str) -> dict:
    """Every portal (few: operators define them), each with this tenant's decision about it."""
    decided = {e.portal_id: e for e in PartnerEnablement.query(tenant_id, consistent_read=True)}
    portals = sorted(PartnerPortal.scan(consistent_read=True), key=lambda p: p.name.lower())
    return {"items": [portal_out(p, decided.get(p.portal_id)) for p in portals]}


def get_for_tenant(tenant_id: str, portal_id: str) -> PartnerPortalOut:
    return portal_out(get_portal(portal_id), get_item(PartnerEnablement, tenant_id, portal_id))


def agreement(portal_id: str) -> PartnerAgreement:
    portal = get_portal(portal_id)
    return PartnerAgreement(portal_id=portal_id, version=portal.agreement_version, text=portal.agreement_text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _email_of(tenant_id: str, person_id: str) -> str | None:
    person = get_item(Person, tenant_id, person_id)
    return (person.email or person.username) if person else None


def edit_conflict() -> Error:
    return Conflict("edit_conflict", "Someone else enabled or disabled this portal at the same time; "
                                          "reload and try again.")


def enable(tenant_id: str, portal_id: str, body: EnableBody, actor: str, ip: str | None,
           user_agent: str | None) -> PartnerPortalOut:
    portal = get_portal(portal_id)
    if not body.accept or body.agreement_version != portal.agreement_version:
        raise Invalid("agreement_not_accepted", f"Enabling this portal needs acceptance of version "
                       f"{portal.agreement_version} of its agreement: send accept true with that version.",
                       agreement_version=portal.agreement_version)
    e = get_item(PartnerEnablement, tenant_id, portal_id) or PartnerEnablement(tenant_id, portal_id)
    e.enabled, e.accepted_by, e.accepted_by_email, e.accepted_at = True, actor, _email_of(tenant_id, actor), now()
    e.agreement_version, e.agreement_sha256 = portal.agreement_version, _digest(portal.agreement_text)
    e.ip, e.user_agent = ip, (user_agent or "")[:512] or None
    e.disabled_by = e.disabled_at = None
    e.updated_at = now()
    try:
        with transaction() as tx:
            # An operator may publish a new agreement between our read and this write: the acceptance must be
            # of the version current when it lands. The version attribute refuses a concurrent toggle.
            tx.condition_check(PartnerPortal, portal_id,
                               condition=PartnerPortal.agreement_version == portal.agreement_version)
            tx.save(e)
    except TransactWriteError:
        current = get_portal(portal_id).agreement_version
        if current != portal.agreement_version:
            raise Invalid("agreement_not_accepted", "A new version of the agreement was just published; "
                           "read and accept it.", agreement_version=current) from None
        raise edit_conflict() from None
    audit.record(tenant_id, "partner.enabled", actor=actor, target=portal_id, ip=ip,
                 agreement_version=portal.agreement_version, revision=e.version)
    return portal_out(portal, e)


def disable(tenant_id: str, portal_id: str, actor: str, ip: str | None) -> PartnerPortalOut:
    portal = get_portal(portal_id)
    e = get_item(PartnerEnablement, tenant_id, portal_id)
    if e is None or not e.enabled:
        return portal_out(portal, e)  # already off: nothing to write, nothing to audit
    e.enabled, e.disabled_by, e.disabled_at, e.updated_at = False, actor, now(), now()
    e.generation = int(e.generation or 0) + 1  # every partner token issued so far ends for good
    try:
        e.save()  # conditional on the version read above
    except PutError:
        raise edit_conflict() from None
    audit.record(tenant_id, "partner.disabled", actor=actor, target=portal_id, ip=ip, revision=e.version)
    return portal_out(portal, e)


def list_users(portal_id: str, query: dict) -> dict:
    """Active users by default; with include_inactive=true, everyone (rule 21)."""
    get_portal(portal_id)
    limit, start = page_args(query)
    include_inactive = _flag(query, "include_inactive")
    start_key = {"portal_id": {"S": portal_id}, "user_id": {"S": start}} if start else None
    results = PartnerUser.query(portal_id, last_evaluated_key=start_key, page_size=200,
                                filter_condition=None if include_inactive else PartnerUser.status == "active")
    items, cursor = _take(results, limit, "user_id")
    return {"items": [PartnerUserOut(user_id=u.user_id, name=u.name, email=u.email, status=u.status,
                                     created_at=iso_at(u.created_at)) for u in items], "next_cursor": cursor}


def portal_audit(tenant_id: str, portal_id: str, query: dict) -> dict:
    """This tenant's events about the portal (enable, disable, tokens, every partner call), newest first."""
    get_portal(portal_id)
    return audit.trail(tenant_id, portal_id, query, as_actor=False)


# --- partners -----------------------------------------------------------------------------------------------------

def issue_token(body: PartnerTokenRequest, ip: str | None) -> dict:
    from chalicelib.core.security import keys, passwords
    lockout.throttle("partner-token-client", body.client_id, TOKEN_LIMIT_PER_CLIENT, 60)
    lockout.throttle("partner-token-ip", ip or "unknown", TOKEN_LIMIT_PER_IP, 60)
    client = get_item(PartnerClient, body.client_id)
    # Unknown client and wrong secret: the same answer after the same argon2 work (a dummy hash when unknown).
    if not passwords.verify_password(client.secret_hash if client else None, body.client_secret):
        raise invalid_client()
    portal = get_item(PartnerPortal, client.portal_id)
    e = get_item(PartnerEnablement, body.tenant_id, client.portal_id)
    # One answer for "no such tenant", "not enabled" and "disabled tenant": a partner learns nothing more.
    if portal is None or e is None or not e.enabled or tenants.active(body.tenant_id, consistent=True) is None:
        raise not_enabled()
    perms = [k for k in PERMISSIONS if k in set(portal.permissions)]
    # sid names the token's session: the portal's enablement for this business, in its current generation
    token = keys.sign({"sub": portal.portal_id, "tid": body.tenant_id, "typ": "partner", "perms": perms,
                       "cid": client.client_id, "sid": f"{portal.portal_id}:{int(e.generation or 0)}"},
                      TOKEN_SECONDS)
    audit.record(body.tenant_id, "partner.token_issued", actor=f"partner:{portal.portal_id}",
                 target=portal.portal_id, ip=ip, client_id=client.client_id)
    return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "permissions": perms}


def check_access(principal: Principal, permission: str | None, route: str, params: dict, ip: str | None) -> None:
    """Runs before every partner route (api.Partner): the enablement and the portal as they are now, not as they
    were when the token was issued. Every call, refused or not, goes into the tenant's audit trail."""
    tenant_id, portal_id = principal.tenant_id, principal.subject
    e = get_item(PartnerEnablement, tenant_id, portal_id)
    portal = get_item(PartnerPortal, portal_id) if e is not None and e.enabled else None
    if portal is None or principal.claims.get("iat", 0) < (portal.secret_rotated_at or 0):
        outcome = "partner_access_disabled"  # not enabled, or a token minted with a secret since rotated
    elif e is None or principal.claims.get("sid") != f"{portal_id}:{int(e.generation or 0)}":
        outcome = "session_ended"  # issued before the business last disabled the portal: never again
    elif permission and permission not in (portal.permissions or ()):
        outcome = "permission_not_granted"
    else:
        outcome = "allowed"
    audit.record(tenant_id, "partner.call", actor=f"partner:{portal_id}", target=portal_id, ip=ip, route=route,
                 outcome=outcome, **({"permission": permission} if permission else {}),
                 **({"params": dict(params)} if params else {}))
    if outcome == "partner_access_disabled":
        raise Forbidden(outcome, "This business has disabled your partner portal.")
    if outcome == "session_ended":
        raise Unauthenticated(outcome, "This token was issued before the business disabled your portal; get a new "
                       "token.")
    if outcome == "permission_not_granted" and permission:  # (only ever set with a permission)
        raise Forbidden(outcome, f"Your portal does not have the {PERMISSIONS.get(permission, permission)} "
                                     "permission for this call.", permission=permission)


def scope(principal: Principal) -> PartnerScope:
    portal = get_portal(principal.subject)
    return PartnerScope(portal_id=portal.portal_id, name=portal.name, tenant_id=principal.tenant_id,
                        permissions=permissions_out(portal.permissions))


def list_locations(tenant_id: str, query: dict) -> dict:
    """The tenant's locations (optionally one customer's), a page at a time."""
    from chalicelib.flows import directory
    if query.get("customer_id"):
        return directory.list_locations(tenant_id, query["customer_id"], query)
    limit, start = page_args(query)
    start_key = {"tenant_id": {"S": tenant_id}, "location_id": {"S": start}} if start else None
    results = Location.query(tenant_id, limit=limit, last_evaluated_key=start_key)
    items = [location_out(loc) for loc in results]
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "location_id")}
