"""Customer portal access (DESIGN rules 1, 2, 4-7): register from an invitation, self sign-up, sign-in, the
emailed reset link, the signed-in user's view of themselves, and the tenant's portal settings.

Anti-enumeration: sign-up and reset answer the same 202 whether or not the email has an account or is on a
record, after the same work (they queue one message in every case and the sender decides what to send), and
sign-in gives one answer for an unknown email and a wrong password after the same reads, one argon2
verification and the same writes. tests/test_enumeration_timing.py measures it."""
import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal
from urllib.parse import urlencode

from pydantic import Field
from pynamodb.exceptions import UpdateError

from chalicelib.core import audit, config, identity, lockout, messaging, single_use, tenants
from chalicelib.core.errors import Error, Forbidden, Gone, Invalid, Unauthenticated
from chalicelib.core.identity import Email
from chalicelib.core.models import Customer, PortalUser, Tenant, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Password, Shape, Strict
from chalicelib.core.security import passwords
from chalicelib.core.text import OneLine
from chalicelib.flows import directory
from chalicelib.flows.portal import invitations, portal_sessions

RESET_SECONDS = 30 * 60
# Reset emails delivered to one portal user per hour, whatever asked for them; past it the sender sends nothing
# (the request's answer is the same 202 whatever the email, so a refusal there would be an oracle).
RESET_LINKS_PER_USER_PER_HOUR = 5
TenantId = Annotated[OneLine, Field(min_length=1, max_length=64)]
Token = Annotated[OneLine, Field(min_length=1, max_length=200)]


def wrong_credentials() -> Error:
    """A fresh error for every raise: a module-level one would keep its last traceback, and with it the frames
    holding the typed password."""
    return Unauthenticated("invalid_credentials", "The email or password is not right.")


def account_disabled(tenant_name: str) -> Error:
    return Forbidden("account_disabled", f"This account is disabled; ask {tenant_name} to enable it.")


class RegisterRequest(Strict):
    token: Token
    password: Password
    password_confirm: Password | None = None


class SignUpRequest(Strict):
    tenant_id: TenantId
    email: Email


class SignInRequest(Strict):
    tenant_id: TenantId
    email: Annotated[OneLine, Field(min_length=1, max_length=320)]
    password: Password


class RefreshRequest(Strict):
    refresh_token: Token


class ResetRequest(Strict):
    tenant_id: TenantId
    email: Email


class ResetComplete(Strict):
    token: Token
    new_password: Password
    new_password_confirm: Password


class Settings(Strict):
    self_signup: bool
    third_party_signin: list[Literal["google", "microsoft"]] = Field(default_factory=list, max_length=2)


class Session(Shape):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class Accepted(Shape):
    status: str
    message: str


class MeGrant(Shape):
    customer_id: str
    customer_name: str | None = None
    access: str
    contact_id: str | None = None
    admin: bool = False


class Me(Shape):
    user_id: str
    tenant_id: str
    tenant_name: str
    email: str
    status: str
    grants: list[MeGrant]
    signed_in_with: str


# --- register (from the invitation link) -------------------------------------------------------------------------

def _check_new_password(password: str, confirm: str | None, field: str = "password") -> None:
    if confirm is not None and confirm != password:
        raise Invalid("passwords_differ", "The two passwords are not the same.", field=f"{field}_confirm")
    try:
        passwords.check_policy(password)
    except passwords.PolicyViolation as exc:
        raise Invalid(exc.code, exc.message, field=field) from None


@lockout.limit_guesses_per_ip("links", "token_invalid")
def register(body: RegisterRequest, ip: str | None, user_agent: str | None) -> dict:
    """Consumes the invitation exactly once, sets the password, signs the user in."""
    _check_new_password(body.password, body.password_confirm)  # a policy failure does not spend the link
    record, user = single_use.look_up_holder(body.token, "portal_invitation", PortalUser,
                                             Gone("invitation_revoked", "This invitation was withdrawn."),
                                             expired_code="invitation_expired")
    if user.status != "invited" or user.invitation_token_hash != record.token_hash:
        raise Gone("invitation_replaced" if user.status == "invited" else "token_used",
                       "This link no longer works; use the latest invitation email.")
    backed = invitations.grants_from_refs(directory.records_for_email(user.tenant_id, user.email))
    grants = [g for g in user.grants or [] if g.customer_id in backed]
    if not grants:  # the email was taken off every record since the invitation was sent
        raise Gone("invitation_revoked", "This invitation was withdrawn; ask the business for a new one.")
    single_use.spend(record)
    password_hash = passwords.hash_password(body.password)
    try:
        user.update(actions=[PortalUser.password_hash.set(password_hash), PortalUser.password_set_at.set(now()),
                             PortalUser.status.set("active"),
                             PortalUser.status_key.set(invitations.status_key(user.tenant_id, "active")),
                             PortalUser.grants.set(grants), PortalUser.invitation_token_hash.remove(),
                             PortalUser.updated_at.set(now())],
                    condition=PortalUser.status == "invited", add_version_condition=False)
    except UpdateError:
        raise Gone("token_used", "This link was already used.") from None
    audit.record(user.tenant_id, "portal.registered", actor=user.user_id, ip=ip, user_agent=user_agent)
    return portal_sessions.start(user, "invitation", ip, user_agent)


# --- self sign-up ---------------------------------------------------------------------------------------------------

SAME_ANSWER = {"status": "accepted", "message": "If this email can have an account here, we have sent it a link."}


def sign_up(body: SignUpRequest, ip: str | None) -> dict:
    """Every request the rate limits let through queues one message, whoever the email belongs to, and the
    sender decides at delivery what to send (render_sign_up): the answer and the work behind it are the same
    for an email with an account, one on a record and a stranger's (no lookup here whose cost could tell)."""
    lockout.throttle("portal-signup-ip", ip or "unknown", limit=20, window_seconds=3600)
    lockout.throttle("portal-signup-email", f"{body.tenant_id}#{body.email}", limit=3, window_seconds=3600)
    tenant = tenants.active(body.tenant_id)
    if tenant is None or not tenant.self_signup:
        return SAME_ANSWER  # the business's setting: the same for every email
    messaging.enqueue([_decided_at_delivery("portal_sign_up", tenant.tenant_id, body.email, ip)])
    return SAME_ANSWER


def _decided_at_delivery(render: str, tenant_id: str, email: str, ip: str | None) -> dict:
    return {"message_id": uuid.uuid4().hex, "tenant_id": tenant_id, "channel": "email", "render": render,
            "email": email, "ip": ip}


def render_sign_up(message: dict) -> dict | None:
    """The sender's half of sign-up, once per message: an email on a record without an account becomes an
    invited user and gets the invitation; one with an active account is told so, with the sign-in and reset
    links; anything else (on no record, disabled, sign-up switched off since) gets nothing."""
    tenant_id, email = message["tenant_id"], message["email"]
    tenant = tenants.active(tenant_id)
    if tenant is None or not tenant.self_signup:
        return None
    allowed = invitations.grants_from_refs(directory.records_for_email(tenant_id, email))
    if not allowed:
        return None
    user = invitations.find_user(tenant_id, email)
    if user is not None and user.status == "active":
        base = config.public_base_url()
        sign_in_link = f"{base}/sign-in?{urlencode({'tenant_id': tenant_id})}"
        reset_link = f"{base}/reset-password?{urlencode({'tenant_id': tenant_id})}"
        return messaging.render_email(tenant_id, email, "portal-account-exists", [sign_in_link, reset_link],
                                      message["message_id"], tenant_name=tenant.name, sign_in_link=sign_in_link,
                                      reset_link=reset_link)
    if user is not None and user.status != "invited":
        return None  # disabled: the business decided
    try:
        user = [invitations.upsert_invited(tenant_id, email, customer_id, access, contact_id, False, "self_signup")
                for customer_id, (access, contact_id) in allowed.items()][-1]
    except Error:  # activated or disabled meanwhile
        return None
    audit.record(tenant_id, "portal.signed_up", target=user.user_id, ip=message.get("ip"))
    return invitations.render_invitation(invitations.invite_message(tenant_id, user.user_id, message["message_id"]),
                                         template="portal-sign-up")  # it answers a request: not "invites you"


# --- sign-in --------------------------------------------------------------------------------------------------------

@lockout.limit_guesses_per_ip("portal-sign-in", "invalid_credentials")
def sign_in(body: SignInRequest, ip: str | None, user_agent: str | None) -> dict:
    email = identity.email_key(body.email)  # every spelling of the address is one account (and one lockout)
    counted = lockout.attempt("portal", body.tenant_id, email)  # before the password is checked (423 when locked)
    tenant = tenants.find(body.tenant_id)
    user = invitations.find_user(body.tenant_id, email)  # read whatever the tenant's state: the same work
    if tenant is None or tenant.status != "active":
        user = None
    ok = passwords.verify_password(user.password_hash if user else None, body.password)
    if ok and user is not None and tenant is not None and user.status == "disabled":
        # Only someone who knows the password learns this, and is told whom to ask instead of trying resets that
        # never arrive. Not a wrong guess: the attempt is given back (as staff sign-in does for a retired
        # temporary password). A wrong password of a disabled user still gets the answer every wrong one gets.
        lockout.release(counted)
        audit.record(body.tenant_id, "portal.sign_in_refused", actor=user.user_id, ip=ip, user_agent=user_agent,
                     reason="disabled")
        raise account_disabled(tenant.name)
    if not ok or user is None or user.status != "active":
        locked_for = lockout.failed(counted)
        if tenant is not None:  # recorded for unknown emails too (no actor): the same writes either way
            actor = user.user_id if user else None
            audit.record(body.tenant_id, "portal.sign_in_failed", actor=actor, ip=ip, user_agent=user_agent)
            if locked_for:
                audit.record(body.tenant_id, "portal.locked", actor=actor, ip=ip, seconds=locked_for)
        raise wrong_credentials()
    lockout.clear("portal", body.tenant_id, email)
    audit.record(body.tenant_id, "portal.signed_in", actor=user.user_id, ip=ip, user_agent=user_agent)
    return portal_sessions.start(user, "password", ip, user_agent)


# --- forgotten password (emailed link) -----------------------------------------------------------------------------

def request_reset(body: ResetRequest, ip: str | None) -> dict:
    """Like sign-up: one queued message per request whoever the email is; the sender mints the link for an
    active account at delivery (render_reset) and sends nothing otherwise."""
    lockout.throttle("portal-reset-ip", ip or "unknown", limit=20, window_seconds=3600)
    lockout.throttle("portal-reset-email", f"{body.tenant_id}#{body.email}", limit=3, window_seconds=3600)
    if tenants.find(body.tenant_id) is not None:
        messaging.enqueue([_decided_at_delivery("portal_reset", body.tenant_id, body.email, ip)])
    return SAME_ANSWER


def render_reset(message: dict) -> dict | None:
    """The sender's half of a reset request: the link is minted when it is delivered, so it lives its 30
    minutes from the email's arrival; None (nothing sent) unless the email has an active account that had fewer
    than RESET_LINKS_PER_USER_PER_HOUR reset emails this hour."""
    tenant_id = message["tenant_id"]
    tenant, user = tenants.find(tenant_id), invitations.find_user(tenant_id, message["email"])
    if tenant is None or user is None or user.status != "active":
        return None
    from chalicelib.flows.staff.staff_recovery import within_hourly_cap
    if not within_hourly_cap("portal-reset-links", f"{tenant_id}#{user.user_id}", RESET_LINKS_PER_USER_PER_HOUR):
        return None
    # the reset answers 410 link_replaced for an older link, as a replaced staff reset link does
    token = invitations.mint_link(user, "portal_reset", RESET_SECONDS, stored_as="reset_link_token_hash",
                                  status="active", actions=[], revoked="link_replaced", replaced="link_replaced")
    if token is None:
        return None
    link = f"{config.public_base_url()}/reset-password?token={token}"
    audit.record(user.tenant_id, "portal.reset_requested", target=user.user_id, ip=message.get("ip"))
    return messaging.render_email(user.tenant_id, user.email, "portal-reset", [link], message["message_id"],
                                  tenant_name=tenant.name, link=link, minutes=str(RESET_SECONDS // 60))


LINK_REPLACED = "A newer reset link was sent, or the password was reset since; use the latest email."


@lockout.limit_guesses_per_ip("links", "token_invalid")
def complete_reset(body: ResetComplete, ip: str | None, user_agent: str | None) -> dict:
    _check_new_password(body.new_password, body.new_password_confirm, field="new_password")
    # Checks first, then spend the link: a refused attempt leaves it usable (as staff_recovery.complete does).
    record, user = single_use.look_up_holder(body.token, "portal_reset", PortalUser,
                                             Gone("token_used", "This link no longer works."))
    if user.status != "active":
        tenant = tenants.find(user.tenant_id)
        raise account_disabled(tenant.name if tenant else "the business")
    if user.reset_link_token_hash != record.token_hash:  # an older link whose revocation did not land
        raise Gone("link_replaced", LINK_REPLACED)
    if user.password_hash and passwords.verify_password(user.password_hash, body.new_password):
        # One rule with the staff resets and changes: a reset chooses a new password (the link stays usable).
        raise Invalid("password_reused", "Choose a password different from the current one.",
                       field="new_password")
    single_use.spend(record)  # exactly one of two racing resets gets past here
    try:  # the reset ends the link with it: no earlier link can be live, a later one (minted since) stays so
        user.update(actions=[PortalUser.password_hash.set(passwords.hash_password(body.new_password)),
                             PortalUser.password_set_at.set(now()), PortalUser.updated_at.set(now()),
                             PortalUser.reset_link_token_hash.remove(),
                             PortalUser.session_epoch.add(1)],  # every session ends in the same write
                    condition=PortalUser.reset_link_token_hash == record.token_hash, add_version_condition=False)
    except UpdateError:  # a newer link was minted between the check and here: this one is replaced
        raise Gone("link_replaced", LINK_REPLACED) from None
    # whoever knew the old password is signed out everywhere (the update above moved the session epoch on)
    audit.record(user.tenant_id, "session.ended_all", actor=user.user_id, target=user.user_id, ip=ip,
                 reason="password_reset")
    lockout.clear("portal", user.tenant_id, user.email)
    tenant = tenants.find(user.tenant_id)
    when = datetime.now(timezone.utc).strftime("%d %b %Y %H:%M UTC")
    messaging.enqueue([messaging.render_email(user.tenant_id, user.email, "portal-password-changed", [],
                                              tenant_name=tenant.name if tenant else "", when=when)])
    audit.record(user.tenant_id, "portal.password_reset", actor=user.user_id, ip=ip, user_agent=user_agent)
    return {"status": "password_changed", "message": "Your password was changed; sign in with the new one."}


# --- the signed-in user ----------------------------------------------------------------------------------------------

def me(principal: Principal) -> Me:
    if principal.claims.get("amr") == "access_link":
        from chalicelib.flows.portal import access_links
        customer = access_links.check_session(principal)
        tenant = tenants.find(principal.tenant_id)
        return Me(user_id=principal.subject, tenant_id=principal.tenant_id, tenant_name=tenant.name if tenant else "",
                  email="", status="access_link", signed_in_with="access_link",
                  grants=[MeGrant(customer_id=customer.customer_id, customer_name=customer.name, access="billing")])
    user = principal.live.record  # the guard read it and checked the session is alive
    tenant = tenants.find(user.tenant_id)
    grants = [g for g in user.grants or [] if g.access != "none"]
    names = {c.customer_id: c.name for c in Customer.batch_get([(user.tenant_id, g.customer_id) for g in grants])} \
        if grants else {}
    return Me(user_id=user.user_id, tenant_id=user.tenant_id, tenant_name=tenant.name if tenant else "",
              email=user.email, status=user.status, signed_in_with=principal.claims.get("amr", "password"),
              grants=[MeGrant(customer_id=g.customer_id, customer_name=names.get(g.customer_id), access=g.access,
                              contact_id=g.contact_id, admin=bool(g.admin)) for g in grants])


# --- the tenant's settings (admin) -------------------------------------------------------------------------------------

def get_settings(tenant_id: str) -> Settings:
    tenant = tenants.get(tenant_id)  # the guard already found the caller's tenant active
    return Settings.model_validate({"self_signup": bool(tenant.self_signup),
                                    "third_party_signin": list(tenant.third_party_signin or [])})


PROVIDER_WORDS = {"google": "Google", "microsoft": "Microsoft"}


def put_settings(tenant_id: str, body: Settings, actor: str, ip: str | None) -> Settings:
    # A provider can be switched on only once the operator has set it up for this deployment (its client in the
    # stage's OIDC secret); switched on without it, the sign-in page would offer a button that cannot work. One
    # already on stays allowed (the set-up may have been removed since): the admin can still switch it off.
    from chalicelib.core.errors import NotFound
    from chalicelib.flows.portal import oidc
    already = set(tenants.get(tenant_id, consistent=True).third_party_signin or [])
    for provider in sorted(set(body.third_party_signin) - already):
        try:
            oidc.provider_config(provider)
        except NotFound:
            raise Invalid("provider_not_configured", f"Sign-in with {PROVIDER_WORDS[provider]} is not set up for "
                                                     "this service, so it cannot be switched on. Ask the service "
                                                     "operator to set it up.", field="third_party_signin") from None
    Tenant(tenant_id).update(actions=[Tenant.self_signup.set(body.self_signup),
                                      Tenant.third_party_signin.set(sorted(set(body.third_party_signin)))],
                             condition=Tenant.tenant_id.exists())
    audit.record(tenant_id, "portal.settings_changed", actor=actor, ip=ip, self_signup=body.self_signup,
                 third_party_signin=sorted(set(body.third_party_signin)))
    return get_settings(tenant_id)


# --- a portal user's audit trail (admin) --------------------------------------------------------------------------------

def user_audit(tenant_id: str, user_id: str, query: dict) -> dict:
    invitations.get_user(tenant_id, user_id)  # 404 for another tenant's user
    return audit.trail(tenant_id, user_id, query)
