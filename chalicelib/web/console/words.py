"""The audit trail in the words office staff use: "Invited by Admin", "Signed in", never `portal.invited`.

Shared by every console page that shows activity (a portal user's, a person's, a partner portal's, the Activity
section). `describe(event, names)` gives one line for an audit entry (core/audit.py AuditEntry, or a dict with
the same keys); `names` maps ids (staff, portal users, customers) to what people call them, and `names_for` reads
those names for a page of events with two batch reads. An action not listed here still reads as words (its code
with the dots and underscores taken out), so a new action never shows as a code or breaks a page."""
from collections.abc import Iterable, Mapping
from typing import Any

# action, or "action:reason" / "action:provider" for the variants that read differently. {actor} is who did it
# (a name, "an administrator", "the system"), {customer} the customer record named in the event, {access} the
# access it gave, {channel} how a message went.
ACTIVITY_WORDS: dict[str, str] = {
    # the customer portal
    "portal.invited": "Invited by {actor} to {customer} ({access})",
    "portal.invitation_resent": "Invitation sent again by {actor}",
    "portal.invitation_revoked": "Invitation withdrawn: the email was taken off {customer}",
    "portal.signed_up": "Asked to sign up (a registration email was sent)",
    "portal.registered": "Registered and chose a password",
    "portal.signed_in": "Signed in",
    "portal.signed_in:google": "Signed in with Google",
    "portal.signed_in:microsoft": "Signed in with Microsoft",
    "portal.sign_in_failed": "Sign-in failed (wrong email or password)",
    "portal.sign_in_refused": "Sign-in refused: the account is disabled",
    "portal.locked": "Locked for a while after too many failed sign-ins",
    "portal.reset_requested": "Asked for a password reset email",
    "portal.password_reset": "Chose a new password with a reset link",
    "portal.refresh_refused": "A sign-in on a device had ended and was refused",
    "portal.refresh_token_reused": "A used sign-in token was presented again; that device was signed out",
    "portal.user_changed": "Changed by {actor}",
    "portal.grant_added": "Given {access} to {customer} by {actor}",
    "portal.grant_widened": "Access to {customer} widened to the whole customer by {actor}",
    "portal.settings_changed": "Customer portal permissions changed by {actor}",
    "portal.access_link_rotated": "Secure access link created by {actor}",
    "portal.access_link_renewed": "Secure access link renewed by {actor}",
    "portal.access_link_used": "Secure access link opened",
    "portal.bulk_invite_upload_url": "Bulk invite file upload started by {actor}",
    "portal.bulk_invite_uploaded": "Bulk invite file uploaded by {actor} for review",
    "portal.bulk_invite_started": "Bulk invite started",
    "portal.bulk_invite_ready": "Bulk invite file reviewed, waiting to be sent",
    "portal.bulk_invite_sent": "Bulk invite sent by {actor}",
    "portal.bulk_invite_done": "Bulk invite finished",
    "portal.bulk_invite_failed": "Bulk invite failed",
    "portal.bulk_invite_expired": "Bulk invite expired without being sent",
    # sessions (staff and portal users)
    "session.ended": "Signed out",
    "session.ended:idle": "Signed out after 30 minutes without activity",
    "session.ended:no_console_access": "Signed out: no access to the admin console",
    "session.ended_all": "Signed out everywhere by {actor}",
    "session.ended_all:signed_out_everywhere": "Signed out everywhere",
    "session.ended_all:admin_sign_out": "Signed out everywhere by {actor}",
    "session.ended_all:disabled": "Disabled by {actor} (signed out everywhere)",
    "session.ended_all:access_changed": "Signed out everywhere by {actor}: access changed",
    "session.ended_all:password_reset": "Signed out everywhere: the password was reset",
    "session.ended_all:password_set": "Signed out everywhere: a new password was set",
    # staff accounts
    "staff.person_created": "Added by {actor}",
    "staff.person_updated": "Changed by {actor}",
    "staff.invited": "Sent an account invite by {actor} ({channel})",
    "staff.invitation_accepted": "Accepted the account invite",
    "staff.invitation_expired": "Account invite expired",
    "staff.account_created": "Username and password created by {actor}",
    "staff.temporary_password_set": "Temporary password set by {actor}",
    "staff.temporary_password_expired": "Temporary password expired unused",
    "staff.reset_link_sent": "Sent a password reset by {actor} ({channel})",
    "staff.password_reset_started": "Asked to reset the password",
    "staff.reset_code_sent": "Password reset code sent ({channel})",
    "staff.reset_code_failed": "Wrong password reset code entered",
    "staff.reset_code_verified": "Password reset code accepted",
    "staff.password_reset": "Chose a new password after a reset",
    "staff.password_changed": "Changed the password",
    "staff.password_expiry_warned": "Warned that the password expires soon ({channel})",
    "staff.signed_in": "Signed in",
    "staff.sign_in_failed": "Sign-in failed (wrong username or password)",
    "staff.locked": "Locked for a while after too many failed sign-ins",
    "staff.unlocked": "Unlocked by {actor}",
    "staff.bulk_invite": "Account invites sent in bulk by {actor}",
    "staff.bulk_password_reset": "Password resets sent in bulk by {actor}",
    # the second factor
    "staff.mfa_totp_started": "Started setting up an authenticator app",
    "staff.mfa_totp_added": "Set up an authenticator app as a second factor",
    "staff.mfa_totp_removed": "Removed the authenticator app",
    "staff.mfa_recovery_codes_made": "New recovery codes were made (the old ones stopped working)",
    "staff.mfa_passed": "Entered the second factor",
    "staff.mfa_failed": "Wrong second-factor code or passkey",
    "staff.mfa_reset": "Second factor reset by {actor}",
    "staff.mfa_policy_changed": "Second-factor policy changed by {actor}",
    "staff.mfa_passkey_added": "Added a passkey",
    "staff.mfa_passkey_renamed": "Renamed a passkey",
    "staff.mfa_passkey_removed": "Removed a passkey",
    "staff.passkey_sign_in": "Signed in with a passkey, without a password",
    # partner portals
    "partner.enabled": "Access granted by {actor} (agreement accepted)",
    "partner.disabled": "Access switched off by {actor}",
    "partner.token_issued": "Partner signed in to the API",
    "partner.call": "Partner used the API",
    # apps (sign-in for the business's apps)
    "app.created": "App registered by {actor}",
    "app.updated": "App changed by {actor}",
    "app.deleted": "App deleted by {actor}",
    "app.secret_rotated": "App secret replaced by {actor}",
    # the business
    "tenant.created": "Business created",
    "tenant.enabled": "Business enabled",
    "tenant.disabled": "Business disabled",
}

ACCESS_WORDS = {"billing": "Billing Access", "non_billing": "Non-Billing Access", "none": "No Access"}
CHANNEL_WORDS = {"email": "by email", "sms": "by text message"}
FIELD_WORDS = {"grants": "access", "status": "status"}


def _get(event: Any, key: str) -> Any:
    return event.get(key) if isinstance(event, Mapping) else getattr(event, key, None)


def actor_words(actor: str | None, names: Mapping[str, str]) -> str:
    """Who did it, as a person would say it."""
    if not actor:
        return "the system"
    if actor == "operator":
        return "the service operator"
    if actor.startswith("partner:"):
        return names.get(actor.partition(":")[2], "a partner portal")
    return names.get(actor, "an administrator")


def describe(event: Any, names: Mapping[str, str] | None = None) -> str:
    """One audit entry in words, e.g. "Invited by Admin to Acme Plumbing (Billing Access)"."""
    names = names or {}
    action = _get(event, "action") or ""
    details = _get(event, "details") or {}
    variant = details.get("reason") or details.get("provider")
    words = ACTIVITY_WORDS.get(f"{action}:{variant}") or ACTIVITY_WORDS.get(action)
    if words is None:  # an action this table does not know yet: its code, read aloud
        kind, _, what = action.partition(".")
        return (what or kind).replace("_", " ").capitalize() or "Something happened"
    customer_id = details.get("customer_id")
    text = words.format(actor=actor_words(_get(event, "actor"), names),
                        customer=names.get(customer_id, f"customer {customer_id}") if customer_id
                        else "a customer record",
                        access=ACCESS_WORDS.get(str(details.get("access")), "access"),
                        channel=CHANNEL_WORDS.get(str(details.get("channel")), ""))
    changed = [FIELD_WORDS.get(f, f.replace("_", " ")) for f in details.get("fields") or ()]
    if action == "portal.user_changed" and changed:
        text += ": " + " and ".join(changed)
    return text.replace(" ()", "")


def when(at: str | None) -> str:
    """An ISO time of the API ("2026-03-04T15:07:00Z") as people read it: "4 Mar 2026, 15:07 UTC"."""
    if not at:
        return ""
    from datetime import datetime
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return at
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def names_for(tenant_id: str, events: Iterable[Any]) -> dict[str, str]:
    """The names a page of events mentions: staff who acted (their name), portal users (their email) and customer
    records (their name), with one batch read per kind. Another business's ids are never read (the keys carry
    this tenant)."""
    from chalicelib.core.models import Customer, Person, PortalUser
    people: set[str] = set()
    users: set[str] = set()
    customers: set[str] = set()
    for event in events:
        for who in (_get(event, "actor"), _get(event, "target")):
            if not who or who == "operator" or who.startswith("partner:"):
                continue
            (users if who.startswith("pu_") else people).add(who)
        customer_id = (_get(event, "details") or {}).get("customer_id")
        if customer_id:
            customers.add(customer_id)
    names: dict[str, str] = {}
    if people:
        names.update({p.person_id: p.name or p.username or "a staff member"
                      for p in Person.batch_get([(tenant_id, i) for i in sorted(people)])})
    if users:
        names.update({u.user_id: u.email for u in PortalUser.batch_get([(tenant_id, i) for i in sorted(users)])})
    if customers:
        names.update({c.customer_id: c.name for c in Customer.batch_get([(tenant_id, i) for i in sorted(customers)])})
    return names


__all__ = ["ACCESS_WORDS", "ACTIVITY_WORDS", "actor_words", "describe", "names_for", "when"]
