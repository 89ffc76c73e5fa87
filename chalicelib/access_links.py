"""The secure access link of a customer (DESIGN rule 6): a long random token per customer that opens that
customer's portal while it has no portal users. Once someone has a portal account (or an invitation) for the
customer, the link alone is not enough any more: the answer is `password_required`.

A link session is a short access token (no refresh token) whose subject is `link:<customer_id>`; every portal
call re-checks that the link is still the current one and that the customer still has no portal users."""
from pydantic import BaseModel
from pynamodb.exceptions import DoesNotExist

from chalicelib import audit, config, directory, lockout, single_use
from chalicelib.api import ApiError, Principal
from chalicelib.models import Customer, PortalUser
from chalicelib.security import keys

LINK_SECONDS = 10 * 365 * 24 * 3600  # until rotated; the token table's TTL must not drop it
SESSION_SECONDS = 15 * 60


class AccessLink(BaseModel):
    customer_id: str
    link: str


class LinkSession(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


def rotate(tenant_id: str, customer_id: str, actor: str, ip: str | None) -> AccessLink:
    """A new link for the customer; the previous one stops working. The link is shown once, here."""
    customer = directory.get_customer(tenant_id, customer_id)
    token = single_use.issue("access_link", tenant_id, customer_id, LINK_SECONDS)
    previous = customer.access_link_hash
    customer.update(actions=[Customer.access_link_hash.set(single_use.token_hash(token))],
                    add_version_condition=False)
    single_use.revoke(previous, "access_link_rotated")
    audit.record(tenant_id, "portal.access_link_rotated", actor=actor, target=customer_id, ip=ip)
    return AccessLink(customer_id=customer_id, link=f"{config.public_base_url()}/v1/portal/access/{token}")


def _has_portal_users(tenant_id: str, customer_id: str) -> bool:
    query = PortalUser.query(tenant_id, filter_condition=PortalUser.customer_ids.contains(customer_id)
                             & PortalUser.status.is_in("invited", "active"))
    return next(iter(query), None) is not None


@lockout.limit_guesses_per_ip("links", "token_invalid")
def open_link(token: str, ip: str | None) -> LinkSession:
    record = single_use.look_up(token, "access_link")
    customer = directory.get_customer(record.tenant_id, record.subject_id)
    if customer.access_link_hash != record.token_hash:
        raise ApiError(410, "access_link_rotated", "This link was replaced; ask the business for the new one.")
    if _has_portal_users(record.tenant_id, customer.customer_id):
        raise ApiError(403, "password_required", "This customer has portal accounts: sign in with your email and "
                       "password.")
    audit.record(record.tenant_id, "portal.access_link_used", target=customer.customer_id, ip=ip)
    claims = {"sub": f"link:{customer.customer_id}", "tid": record.tenant_id, "typ": "portal", "amr": "access_link",
              "lnk": record.token_hash[:16],
              "grants": [{"customer_id": customer.customer_id, "access": "billing", "contact_id": None,
                          "admin": False}]}
    return LinkSession(access_token=keys.sign(claims, SESSION_SECONDS), token_type="Bearer",
                       expires_in=SESSION_SECONDS)


def check_session(principal: Principal) -> Customer:
    """A link session stays valid only while its link is current and the customer has no portal users."""
    customer_id = principal.subject.removeprefix("link:")
    try:
        customer = Customer.get(principal.tenant_id, customer_id, consistent_read=True)
    except DoesNotExist:
        raise ApiError(401, "session_ended", "This session has ended.") from None
    if (customer.access_link_hash or "")[:16] != principal.claims.get("lnk") \
            or _has_portal_users(principal.tenant_id, customer_id):
        raise ApiError(401, "session_ended", "This session has ended; sign in with your email and password.")
    return customer
