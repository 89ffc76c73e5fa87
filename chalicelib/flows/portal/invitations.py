"""Customer portal invitations (DESIGN rules 1-4): who may be invited with which access, the portal user
record, resends, and the portal users list admins see.

The invitation link is created when the message is delivered, not when it is queued: the send queue carries
"invite this portal user" and the sender (idempotent per message id) mints the token, stores its hash on the
user, and sends. So a run that is cut off and redelivered can re-enqueue the same message ids freely: nothing is
sent twice, and no link that went out is ever replaced by a retry."""
import hashlib
import uuid
from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.core import audit, config, messaging, single_use, tenants
from chalicelib.core.errors import Conflict, Forbidden, Invalid, NotFound
from chalicelib.core.identity import Email
from chalicelib.core.models import Grant, PortalUser, now
from chalicelib.core.paging import iso, iso_at, make_cursor, page_args
from chalicelib.core.schema import Shape
from chalicelib.core.text import OneLine
from chalicelib.flows import directory

INVITATION_SECONDS = 7 * 24 * 3600
Access = Literal["billing", "non_billing", "none"]
ACCESS_RANK = {"none": 0, "non_billing": 1, "billing": 2}


def portal_user_id(email: str) -> str:
    return "pu_" + hashlib.sha256(email.encode()).hexdigest()[:32]


def status_key(tenant_id: str, status: str) -> str:
    return f"{tenant_id}#{status}"


# --- what an email may get on a customer record (rule 2) -----------------------------------------------------

def grants_from_refs(refs: set[str], customer_id: str | None = None, location_id: str | None = None) -> dict:
    """{customer_id: (max access, contact_id)} that the record refs of an email allow. An email on the customer
    itself allows billing; one only on a location or a contact allows non_billing (a contact's is limited to
    that contact, rule 7)."""
    allowed: dict[str, tuple[str, str | None]] = {}

    def offer(cid: str, access: str, contact_id: str | None = None) -> None:
        current = allowed.get(cid)
        if current is None or ACCESS_RANK[access] > ACCESS_RANK[current[0]] or (current[1] and not contact_id
                                                                              and access == current[0]):
            allowed[cid] = (access, contact_id)

    for ref in refs:
        kind, _, rest = ref.partition(":")
        if kind == "customer":
            offer(rest, "billing")
        elif kind == "location":
            lid, _, cid = rest.partition(":")
            if location_id is None or lid == location_id:
                offer(cid, "non_billing")
        elif kind == "contact":
            contact_id, _, cid = rest.partition(":")
            offer(cid, "non_billing", contact_id)
    if location_id is not None:
        allowed = {cid: (min(a, "non_billing", key=ACCESS_RANK.__getitem__), c) for cid, (a, c) in allowed.items()
                   if any(r.startswith(f"location:{location_id}:") for r in refs)}
    if customer_id is not None:
        allowed = {cid: v for cid, v in allowed.items() if cid == customer_id}
    return allowed


# --- request / response models --------------------------------------------------------------------------------

class InvitationCreate(Shape):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: Email
    customer_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None
    location_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None
    access: Access = "billing"
    admin: bool = False

    @model_validator(mode="after")
    def one_record(self):
        if (self.customer_id is None) == (self.location_id is None):
            raise ValueError("give exactly one of customer_id or location_id")
        return self


class GrantIn(Shape):
    model_config = ConfigDict(extra="forbid")
    customer_id: Annotated[OneLine, Field(min_length=1, max_length=64)]
    access: Access
    contact_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Limits the grant to this contact of the customer (rule 7): 400 contact_not_on_customer "
        "unless it is one of that customer's contacts. Left out (or null), the grant keeps the contact limit it has "
        "(a new grant gets the one the user's email is on): leaving it out never widens a grant.")
    admin: bool = False
    whole_customer: bool = Field(False, description="true removes the grant's contact limit: it then covers the "
                                 "whole customer (audited as portal.grant_widened). Not together with contact_id.")

    @model_validator(mode="after")
    def limit_or_whole(self):
        if self.whole_customer and self.contact_id is not None:
            raise ValueError("give contact_id or whole_customer: true, not both")
        return self


class PortalUserPatch(Shape):
    model_config = ConfigDict(extra="forbid")
    grants: Annotated[list[GrantIn], Field(max_length=200)] | None = None
    status: Literal["active", "disabled"] | None = None


class GrantOut(Shape):
    customer_id: str
    access: str
    contact_id: str | None = None
    admin: bool = False


class PortalUserOut(Shape):
    user_id: str
    email: str
    status: str
    grants: list[GrantOut]
    last_sent_at: str | None = None
    invitation_expires_at: str | None = None
    delivery_problem: str | None = None
    created_at: str
    updated_at: str


class PortalUserPage(Shape):
    items: list[PortalUserOut]
    next_cursor: str | None = None


def user_out(u: PortalUser) -> PortalUserOut:
    return PortalUserOut(user_id=u.user_id, email=u.email, status=u.status,
                         grants=[GrantOut(customer_id=g.customer_id, access=g.access, contact_id=g.contact_id,
                                          admin=bool(g.admin)) for g in u.grants or []],
                         last_sent_at=iso(u.last_sent_at), invitation_expires_at=iso(u.invitation_expires_at),
                         delivery_problem=u.delivery_problem, created_at=iso_at(u.created_at),
                         updated_at=iso_at(u.updated_at))


# --- the portal user record -------------------------------------------------------------------------------------

def get_user(tenant_id: str, user_id: str) -> PortalUser:
    try:
        return PortalUser.get(tenant_id, user_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("portal_user_not_found", "No such portal user in this business.") from None


def find_user(tenant_id: str, email: str) -> PortalUser | None:
    try:
        return PortalUser.get(tenant_id, portal_user_id(email), consistent_read=True)
    except DoesNotExist:
        return None


def merge_grant(grants: list[Grant], customer_id: str, access: str, contact_id: str | None,
                admin: bool = False) -> list[Grant]:
    kept = [g for g in grants if g.customer_id != customer_id]
    return kept + [Grant(customer_id=customer_id, access=access, contact_id=contact_id, admin=admin)]


def invite_message(tenant_id: str, user_id: str, message_id: str) -> dict:
    """A send-queue message the sender turns into the invitation email at delivery (see module doc)."""
    return {"message_id": message_id, "tenant_id": tenant_id, "channel": "email", "render": "portal_invitation",
            "user_id": user_id}


# What the invitee will see, by the access their grants give (rule 1): non-billing access has no invoices.
ACCESS_TEXT = {"billing": "your service history, upcoming visits, invoices and payments",
               "non_billing": "your service history and upcoming visits (invoices are not part of your access)",
               "mixed": "your service history and upcoming visits, and invoices and payments for the accounts "
                        "whose billing you handle"}


def access_text(grants) -> str:
    billing = {g.access == "billing" for g in grants or [] if g.access != "none"}
    return ACCESS_TEXT["mixed" if billing == {True, False} else "billing" if True in billing else "non_billing"]


def mint_link(user: PortalUser, kind: str, seconds: int, *, stored_as: str, status: str, actions: list,
              revoked: str, replaced: str, **data: str) -> str | None:
    """The one way a portal user's link is made (the invitation, the reset link; at delivery, by the sender): a new
    single-use token of `kind` whose hash becomes the user's one live link in `stored_as` (with `actions`), and the
    previous link then answers `replaced`. The swap is conditioned on the hash read, so of links minted at once
    exactly one stays live, and on the user's `status`: None (the new token revoked as `revoked`) once the user
    left it. A link that keeps changing under us raises, and the queue retries the message."""
    token = single_use.issue(kind, user.tenant_id, user.user_id, seconds, **data)
    new_hash, attribute = single_use.token_hash(token), getattr(PortalUser, stored_as)
    for _attempt in range(5):
        previous = getattr(user, stored_as)
        same_link = attribute == previous if previous else attribute.does_not_exist()
        try:
            user.update(actions=[attribute.set(new_hash), *actions],
                        condition=(PortalUser.status == status) & same_link, add_version_condition=False)
            break
        except UpdateError:
            user.refresh(consistent_read=True)
            if user.status != status:
                single_use.revoke(new_hash, revoked)
                return None
    else:
        raise RuntimeError(f"{kind} link kept changing under us")
    single_use.revoke(previous, replaced)
    return token


def render_invitation(message: dict, template: str = "portal-invitation") -> dict | None:
    """Called by the sender, once per message id: mints the link, replaces the previous one, builds the email
    (`template`: portal-invitation, or portal-sign-up when it answers a self sign-up). None when there is nothing
    to send any more (the user registered or was disabled meanwhile)."""
    tenant_id, user_id = message["tenant_id"], message["user_id"]
    try:
        user = PortalUser.get(tenant_id, user_id, consistent_read=True)
    except DoesNotExist:
        return None
    if user.status != "invited":
        return None
    token = mint_link(user, "portal_invitation", INVITATION_SECONDS, stored_as="invitation_token_hash",
                      status="invited", actions=[PortalUser.invitation_expires_at.set(now() + INVITATION_SECONDS),
                                                 PortalUser.last_sent_at.set(now())],
                      revoked="invitation_revoked", replaced="invitation_replaced", email=user.email)
    if token is None:
        return None
    tenant = tenants.get(tenant_id)
    link = f"{config.public_base_url()}/register?token={token}"
    return messaging.render_email(tenant_id, user.email, template, [link], message["message_id"],
                                  tenant_name=tenant.name, link=link, days=str(INVITATION_SECONDS // 86400),
                                  access=access_text(user.grants))


def invite(tenant_id: str, body: InvitationCreate, actor: str, ip: str | None = None,
           notify: bool = True) -> PortalUserOut:
    """Creates or updates the portal user with a grant on the record, then queues the invitation email.
    Inviting again is the resend: the new link replaces the previous one."""
    refs = directory.records_for_email(tenant_id, body.email)
    customer_id = body.customer_id
    if customer_id:
        directory.get_customer(tenant_id, customer_id)
    elif body.location_id is not None:  # one of the two, always (InvitationCreate.one_record)
        # the location's own customer: the email may be on other customers' records too
        customer_id = directory.get_location(tenant_id, body.location_id).customer_id
    allowed = grants_from_refs(refs, customer_id, body.location_id)
    if not allowed:
        raise Invalid("email_not_on_record", "This email is not on that customer or location record; add it "
                       "to the record first.", field="email")
    (customer_id, (max_access, contact_id)), = allowed.items()
    if ACCESS_RANK[body.access] > ACCESS_RANK[max_access]:
        raise Invalid("access_not_allowed", f"An email found only on a location or contact can get at most "
                       f"{max_access} access.", field="access")
    user = upsert_invited(tenant_id, body.email, customer_id, body.access, contact_id, body.admin, actor)
    if notify:
        messaging.enqueue([invite_message(tenant_id, user.user_id, uuid.uuid4().hex)])
    audit.record(tenant_id, "portal.invited", actor=actor, target=user.user_id, ip=ip, customer_id=customer_id,
                 access=body.access)
    return user_out(user)


def upsert_invited(tenant_id: str, email: str, customer_id: str, access: str, contact_id: str | None,
                   admin: bool, actor: str) -> PortalUser:
    user_id = portal_user_id(email)
    for _attempt in range(3):  # optimistic: a concurrent edit makes the conditional write fail; read again
        user = find_user(tenant_id, email)
        if user is None:
            user = PortalUser(tenant_id, user_id, email=email, status="invited",
                              status_key=status_key(tenant_id, "invited"),
                              grants=merge_grant([], customer_id, access, contact_id, admin),
                              customer_ids={customer_id}, invite_job=f"single:{uuid.uuid4().hex}")
            try:
                user.save(condition=PortalUser.user_id.does_not_exist())
                return user
            except PutError:
                continue
        if user.status == "active":
            raise Conflict("already_active", "This person already has a portal account; change their "
                           "access with PATCH /v1/portal/users/{id}.", user_id=user.user_id)
        if user.status == "disabled":
            raise Conflict("user_disabled", "This portal user is disabled; enable them first.",
                           user_id=user.user_id)
        user.grants = merge_grant(list(user.grants or []), customer_id, access, contact_id, admin)
        user.customer_ids = {g.customer_id for g in user.grants}
        user.updated_at = now()
        try:
            user.save()  # VersionAttribute: fails if someone else changed the user since we read it
            return user
        except PutError:
            continue
    raise Conflict("edit_conflict", "This portal user changed at the same time; try again.")


def resend(tenant_id: str, user_id: str, actor: str, ip: str | None = None) -> PortalUserOut:
    user = get_user(tenant_id, user_id)
    if user.status == "active":
        raise Conflict("already_active", "This person already has a portal account.")
    if user.status != "invited":
        raise Conflict("user_disabled", "This portal user is disabled; enable them first.")
    # the grants must still be backed by the records (the email may have been corrected meanwhile)
    backed = grants_from_refs(directory.records_for_email(tenant_id, user.email))
    if not any(g.customer_id in backed for g in user.grants or []):
        raise Conflict("email_not_on_record", "This email is no longer on any of the user's customer "
                       "records; invite the corrected address instead.")
    messaging.enqueue([invite_message(tenant_id, user.user_id, uuid.uuid4().hex)])
    audit.record(tenant_id, "portal.invitation_resent", actor=actor, target=user.user_id, ip=ip)
    return user_out(user)


def patch_customer(tenant_id: str, customer_id: str, body: directory.CustomerPatch) -> directory.CustomerOut:
    """An edit of a record's emails: an invitation that rested on an address taken off it stops working."""
    out, removed = directory.patch_customer(tenant_id, customer_id, body)
    _emails_removed(tenant_id, out.customer_id, removed)
    return out


def patch_location(tenant_id: str, location_id: str, body: directory.LocationPatch) -> directory.LocationOut:
    out, removed = directory.patch_location(tenant_id, location_id, body)
    _emails_removed(tenant_id, out.customer_id, removed)
    return out


def patch_contact(tenant_id: str, contact_id: str, body: directory.ContactPatch) -> directory.ContactOut:
    out, removed = directory.patch_contact(tenant_id, contact_id, body)
    _emails_removed(tenant_id, out.customer_id, removed)
    return out


def _emails_removed(tenant_id: str, customer_id: str, removed: set[str]) -> None:
    for email in sorted(removed):
        email_removed_from_record(tenant_id, email, customer_id)


def email_removed_from_record(tenant_id: str, email: str, customer_id: str) -> None:
    """An admin corrected a record's email: an invitation to the old address that rested on it stops working."""
    user = find_user(tenant_id, email)
    if user is None or user.status != "invited":
        return
    backed = grants_from_refs(directory.records_for_email(tenant_id, email))
    remaining = [g for g in user.grants or [] if g.customer_id in backed]
    if remaining:
        user.update(actions=[PortalUser.grants.set(remaining),
                             PortalUser.customer_ids.set({g.customer_id for g in remaining})])
        return
    user.update(actions=[PortalUser.status.set("disabled"), PortalUser.status_key.set(status_key(tenant_id,
                                                                                               "disabled")),
                         PortalUser.grants.set([]), PortalUser.customer_ids.remove()])
    single_use.revoke(user.invitation_token_hash, "invitation_revoked")
    audit.record(tenant_id, "portal.invitation_revoked", target=user.user_id, customer_id=customer_id,
                 reason="email_removed_from_record")


def list_users(tenant_id: str, query: dict) -> dict:
    limit, start = page_args(query)
    status, customer_id = query.get("status"), query.get("customer_id")
    if status is not None and status not in ("invited", "active", "disabled"):
        raise Invalid("invalid_request", "status must be invited, active or disabled.", field="status")
    condition = PortalUser.customer_ids.contains(customer_id) if customer_id else None
    if status:
        key = status_key(tenant_id, status)
        start_key = {"status_key": {"S": key}, "user_id": {"S": start}, "tenant_id": {"S": tenant_id}} \
            if start else None
        results = PortalUser.by_status.query(key, filter_condition=condition, limit=limit,
                                             last_evaluated_key=start_key)
    else:
        start_key = {"tenant_id": {"S": tenant_id}, "user_id": {"S": start}} if start else None
        results = PortalUser.query(tenant_id, filter_condition=condition, limit=limit, last_evaluated_key=start_key)
    items = [user_out(u) for u in results]
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "user_id")}


def patch_user(tenant_id: str, user_id: str, body: PortalUserPatch, actor: str, ip: str | None) -> PortalUserOut:
    """Grants are checked against the records (rule 2) and their contact limits (rule 7): a grant's contact must
    be one of its customer's, and the one the user's email is on when the email is only on a contact; a grant
    that leaves contact_id out keeps its limit, and only `whole_customer: true` removes it (audited as
    portal.grant_widened). Disabling the user ends every session of theirs for good: enabling them again does
    not bring the old sessions or refresh tokens back. Enabling a user who never registered makes them invited."""
    user = get_user(tenant_id, user_id)
    widened: list[tuple[str, str]] = []
    if body.grants is not None:
        user.grants, widened = _checked_grants(tenant_id, user, body.grants)
        user.customer_ids = {g.customer_id for g in body.grants} or None
    if body.status is not None:
        # enabling someone who never registered puts them back to invited (their old link died when they were
        # disabled): a resend gives them a new one. Otherwise they could never be invited again.
        status = "invited" if body.status == "active" and not user.password_hash else body.status
        user.status, user.status_key = status, status_key(tenant_id, status)
        if body.status == "disabled":
            single_use.revoke(user.invitation_token_hash, "invitation_revoked")
            user.session_epoch = int(user.session_epoch or 0) + 1  # ends every session, in the same write
    user.updated_at = now()
    try:
        user.save()
    except PutError:
        raise Conflict("edit_conflict", "This portal user changed at the same time; try again.") from None
    if body.status == "disabled":
        audit.record(tenant_id, "session.ended_all", actor=actor, target=user_id, ip=ip, reason="disabled")
    for customer_id, contact_id in widened:
        audit.record(tenant_id, "portal.grant_widened", actor=actor, target=user_id, ip=ip, customer_id=customer_id,
                     contact_id=contact_id)
    audit.record(tenant_id, "portal.user_changed", actor=actor, target=user_id, ip=ip,
                 fields=sorted(body.model_dump(exclude_unset=True)))
    return user_out(user)


def _checked_grants(tenant_id: str, user: PortalUser, wanted: list[GrantIn]) -> tuple[list[Grant],
                                                                                       list[tuple[str, str]]]:
    """The grants to store, and the (customer, contact) limits whole_customer removed."""
    from chalicelib.core.models import Contact
    backed = grants_from_refs(directory.records_for_email(tenant_id, user.email))
    current = {g.customer_id: g.contact_id for g in user.grants or []}
    named = {g.contact_id for g in wanted if g.contact_id}
    contacts = {c.contact_id: c for c in Contact.batch_get([(tenant_id, cid) for cid in named])} if named else {}
    grants, widened = [], []
    for g in wanted:
        if g.customer_id not in backed:
            raise Invalid("email_not_on_record", f"{user.email} is not on customer {g.customer_id}.",
                           field="grants")
        most, email_contact = backed[g.customer_id]
        if ACCESS_RANK[g.access] > ACCESS_RANK[most]:
            raise Invalid("access_not_allowed", f"At most {most} access on customer {g.customer_id}.",
                           field="grants")
        limit = current[g.customer_id] if g.customer_id in current else email_contact
        if g.contact_id is not None:
            contact = contacts.get(g.contact_id)  # another tenant's contact is not found: the same answer
            if contact is None or contact.customer_id != g.customer_id:
                raise Invalid("contact_not_on_customer", f"Contact {g.contact_id} is not a contact of "
                               f"customer {g.customer_id}.", field="grants")
            if email_contact is not None and g.contact_id != email_contact:
                raise Invalid("email_not_on_record", f"{user.email} is not on contact {g.contact_id}; the "
                               f"grant can be limited to the contact it is on.", field="grants")
            limit = g.contact_id
        elif g.whole_customer:
            if limit is not None:
                widened.append((g.customer_id, limit))
            limit = None
        grants.append(Grant(customer_id=g.customer_id, access=g.access, contact_id=limit, admin=g.admin))
    return grants, widened


# --- a new contact with "send portal invite" --------------------------------------------------------------------

class ContactWithInvite(directory.ContactOut):
    portal_invite: str | None = None  # invited | granted_to_existing_account
    portal_user: PortalUserOut | None = None


INVITE_PERMISSION = "portal:manage"


def create_contact(tenant_id: str, customer_id: str, body: directory.ContactCreate, actor: str,
                   ip: str | None, *, permissions: Collection[str]) -> ContactWithInvite:
    """Everything that can refuse the invitation is checked before the contact is written: nothing half-way.
    `permissions`: the caller's. Inviting to the portal takes portal:manage whichever way it is asked for (as
    POST /v1/portal/invitations does), so directory:manage alone adds contacts but not portal users."""
    existing = None
    if body.send_portal_invite:
        if INVITE_PERMISSION not in permissions:
            raise Forbidden("forbidden", "You need permission to manage the customer portal to send a portal "
                            "invitation; add the contact without one.", field="send_portal_invite")
        if not body.email:
            raise Invalid("email_required", "A portal invitation needs the contact's email.", field="email")
        directory.get_customer(tenant_id, customer_id)
        existing = find_user(tenant_id, body.email)
        if existing is not None and existing.status == "disabled":
            raise Conflict("user_disabled", "This email belongs to a disabled portal user; enable them first.",
                           user_id=existing.user_id)
    contact = directory.create_contact(tenant_id, customer_id, body)
    out = ContactWithInvite(**directory.contact_out(contact).model_dump())
    if not body.send_portal_invite or not body.email:  # (an invite without an email was refused above)
        return out
    (access, contact_id), = grants_from_refs(directory.records_for_email(tenant_id, body.email),
                                              customer_id=customer_id).values()
    if existing is not None and existing.status == "active":
        existing.update(actions=[
            PortalUser.grants.set(merge_grant(list(existing.grants or []), customer_id, access, contact_id)),
            PortalUser.customer_ids.add({customer_id}), PortalUser.updated_at.set(now())])
        audit.record(tenant_id, "portal.grant_added", actor=actor, target=existing.user_id, ip=ip,
                     customer_id=customer_id, access=access)
        out.portal_invite, out.portal_user = "granted_to_existing_account", user_out(existing)
        return out
    out.portal_user = invite(tenant_id, InvitationCreate(email=body.email, customer_id=customer_id, access=access),
                             actor, ip)
    out.portal_invite = "invited"
    return out
