"""The secure access link of a customer (DESIGN rule 6): a long random token per customer that opens that
customer's portal while it has no portal users. Once someone has a portal account (or an invitation) for the
customer, the link alone is not enough any more: the answer is `password_required`.

The link is `{public_base_url}/portal/access?token=…`, a hosted page (pages.access) that moves the token into a
cookie and off the URL on first load; API clients send it in a body (`POST /v1/portal/access`). No route takes it
in its path, so it never lands in an access log. It expires when the business says (1-365 days, 90 by default,
stored on the customer); the business sees the state (`status`) and renews it without changing the link; an
expired link answers 410 `access_link_expired`. A link made before expiries existed has none and counts as
expired: the business renews it (or makes a new one).

A link session is a short access token (no refresh token) whose subject is `link:<customer_id>`; every portal
call re-checks that the link is still the current one, not expired, and that the customer still has no portal
users (check_session)."""
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field
from pynamodb.exceptions import UpdateError

from chalicelib.core import audit, config, lockout, paging, sessions, single_use
from chalicelib.core.errors import Conflict, Forbidden, Gone, Unauthenticated
from chalicelib.core.models import Customer, PortalUser, Token, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.security import keys
from chalicelib.core.text import OneLine
from chalicelib.flows import directory

LINK_SECONDS = 10 * 365 * 24 * 3600  # the token record lives until rotated; the customer holds the expiry
SESSION_SECONDS = 15 * 60
DAY_SECONDS = 24 * 3600
DEFAULT_DAYS = 90
MAX_DAYS = 365
EXPIRED_MESSAGE = "This link has expired; ask the business for a new one."

ExpiresInDays = Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS,
                                     description=f"How long the link works, in days (default {DEFAULT_DAYS})")]


class LinkOptions(Strict):
    expires_in_days: ExpiresInDays = DEFAULT_DAYS


class OpenLink(Strict):
    token: Annotated[OneLine, Field(min_length=1, max_length=200, description="The token of the link (?token=)")]


class AccessLink(Shape):
    customer_id: str
    link: str
    created_at: str
    expires_at: str


class AccessLinkState(Shape):
    customer_id: str
    status: Literal["active", "expired", "none"]
    created_at: str | None = None
    expires_at: str | None = None


class LinkSession(Shape):
    access_token: str
    token_type: str
    expires_in: int


@dataclass
class Opened:
    session: LinkSession
    customer: Customer


# --- the business: make, see, renew ----------------------------------------------------------------------------

def state(customer: Customer) -> AccessLinkState:
    if not customer.access_link_hash:
        return AccessLinkState(customer_id=customer.customer_id, status="none")
    return AccessLinkState(customer_id=customer.customer_id,
                           status="expired" if sessions.link_expired(customer) else "active",
                           created_at=paging.iso(customer.access_link_created_at),
                           expires_at=paging.iso(customer.access_link_expires_at))


def rotate(tenant_id: str, customer_id: str, options: LinkOptions, actor: str, ip: str | None) -> AccessLink:
    """A new link for the customer; the previous one stops working. The link is shown once, here."""
    customer = directory.get_customer(tenant_id, customer_id)
    token = single_use.issue("access_link", tenant_id, customer_id, LINK_SECONDS)
    previous = customer.access_link_hash
    created = now()
    expires = created + options.expires_in_days * DAY_SECONDS
    # only over the link this admin saw: two admins replacing it at once must not both be shown a link that works
    unchanged = Customer.access_link_hash == previous if previous else Customer.access_link_hash.does_not_exist()
    try:
        customer.update(actions=[Customer.access_link_hash.set(single_use.token_hash(token)),
                                 Customer.access_link_created_at.set(created),
                                 Customer.access_link_expires_at.set(expires)],
                        condition=unchanged, add_version_condition=False)
    except UpdateError:
        single_use.revoke(single_use.token_hash(token), "access_link_rotated")
        raise Conflict("access_link_changed", "Someone else replaced this link at the same moment: look at it "
                       "again before replacing it.") from None
    single_use.revoke(previous, "access_link_rotated")
    audit.record(tenant_id, "portal.access_link_rotated", actor=actor, target=customer_id, ip=ip,
                 expires_in_days=options.expires_in_days)
    return AccessLink(customer_id=customer_id, link=f"{config.public_base_url()}/portal/access?token={token}",
                      created_at=paging.iso_at(created), expires_at=paging.iso_at(expires))


def get_state(tenant_id: str, customer_id: str) -> AccessLinkState:
    return state(directory.get_customer(tenant_id, customer_id))


def renew(tenant_id: str, customer_id: str, options: LinkOptions, actor: str, ip: str | None) -> AccessLinkState:
    """Moves the expiry of the current link to `expires_in_days` from now; the link itself does not change."""
    customer = directory.get_customer(tenant_id, customer_id)
    if not customer.access_link_hash:
        raise Conflict("no_access_link", "This customer has no access link yet: create one with "
                       f"POST /v1/customers/{customer_id}/access-link.")
    expires = now() + options.expires_in_days * DAY_SECONDS
    customer.update(actions=[Customer.access_link_expires_at.set(expires)], add_version_condition=False)
    audit.record(tenant_id, "portal.access_link_renewed", actor=actor, target=customer_id, ip=ip,
                 expires_in_days=options.expires_in_days)
    return state(customer)


# --- the person who has the link -------------------------------------------------------------------------------

def _has_portal_users(tenant_id: str, customer_id: str) -> bool:
    query = PortalUser.query(tenant_id, filter_condition=PortalUser.customer_ids.contains(customer_id)
                             & PortalUser.status.is_in("invited", "active"))
    return next(iter(query), None) is not None


def _current(token: str) -> tuple[Token, Customer]:
    """The link's record and customer while the link opens; otherwise the error that says why."""
    record = single_use.look_up(token, "access_link")
    customer = directory.get_customer(record.tenant_id, record.subject_id)
    if customer.access_link_hash != record.token_hash:
        raise Gone("access_link_rotated", "This link was replaced; ask the business for the new one.")
    if sessions.link_expired(customer):
        raise Gone("access_link_expired", EXPIRED_MESSAGE)
    if _has_portal_users(record.tenant_id, customer.customer_id):
        raise Forbidden("password_required", "This customer has portal accounts: sign in with your email and "
                       "password.")
    return record, customer


@lockout.limit_guesses_per_ip("links", "token_invalid")
def check(token: str, ip: str | None) -> Customer:
    """What the link would open, without opening it (the hosted page's first load, before the token leaves the
    URL). A wrong token counts as a guess, as on every endpoint that takes a link token."""
    return _current(token)[1]


@lockout.limit_guesses_per_ip("links", "token_invalid")
def open_link(token: str, ip: str | None, user_agent: str | None = None) -> Opened:
    record, customer = _current(token)
    audit.record(record.tenant_id, "portal.access_link_used", target=customer.customer_id, ip=ip)
    return Opened(_link_session(record, customer, ip, user_agent), customer)


def _link_session(record: Token, customer: Customer, ip: str | None, user_agent: str | None) -> LinkSession:
    """The one place a link session's access token is minted: a session of kind `link` (chalicelib/core/sessions.py)
    whose id the token names, so the guard checks it live on every call."""
    subject = f"link:{customer.customer_id}"
    session = sessions.start(record.tenant_id, "link", subject, "access_link", ip=ip, user_agent=user_agent,
                             seconds=SESSION_SECONDS)
    claims = {"sub": subject, "tid": record.tenant_id, "typ": "portal", "amr": "access_link",
              "sid": session.family_id, "lnk": record.token_hash[:16],
              "grants": [{"customer_id": customer.customer_id, "access": "billing", "contact_id": None,
                          "admin": False}]}
    return LinkSession(access_token=keys.sign(claims, SESSION_SECONDS), token_type="Bearer",
                       expires_in=SESSION_SECONDS)


def check_session(principal: Principal) -> Customer:
    """A link session stays valid only while its link is current, not expired (the guard checked both), and the
    customer has no portal users."""
    customer = principal.live.record
    if _has_portal_users(principal.tenant_id, customer.customer_id):
        raise Unauthenticated("session_ended", "This session has ended; sign in with your email and password.")
    return customer
