"""The People section's words: account statuses, why a bulk run leaves someone out, and a person's audit trail
(action codes of the staff flows) as sentences an office admin reads. No flow logic here."""

STATUS_WORDS = {
    "no_account": "No account",
    "invited": "Invited",
    "active": "Active",
    "locked": "Locked",
    "disabled": "Disabled",
    "password_expired": "Password expired",
}

BULK_ACTIONS = {  # the Actions select: value → (label, the staff_bulk kind)
    "invite": "Send Account Invite",
    "password_reset": "Send Password Reset",
}

# staff_bulk's skip reasons and failure codes, in words.
REASON_WORDS = {
    "disabled": "Their account is disabled.",
    "has_account": "They already have an account.",
    "no_account": "They have no account yet: send them an account invite instead.",
    "no_contact": "They have neither an email address nor a mobile number.",
    "not_permitted": "They hold permissions you do not have; ask an admin.",
    "not_found": "Not found in this business.",
    "edit_conflict": "Someone changed them at the same moment; try again.",
}

CHANNEL_WORDS = {"email": "by email", "sms": "by text message"}

OUTCOME_WORDS = {
    "would_send": "Will get it",
    "sent": "Sent",
    "skipped": "Left out",
    "not_found": "Not found in this business",
    "failed": "Not sent",
}

ROLE_WORDS = {
    "staff": "Staff (no admin console)",
    "office": "Office (Customers)",
    "admin": "Admin (every section)",
    "technician": "Technician",
}

# A person's audit trail. The conportal branch's chalicelib/web/console/words.py (the console-wide mapping) was not
# there when this section was written: these cover the staff and session actions a person's trail holds.
ACTION_WORDS = {
    "staff.person_created": "Added to the business",
    "staff.person_updated": "Details changed",
    "staff.invited": "Sent an account invitation",
    "staff.invitation_accepted": "Accepted the invitation and created their account",
    "staff.invitation_expired": "The invitation expired",
    "staff.account_created": "Account created with a username and password",
    "staff.reset_link_sent": "Sent a password reset link",
    "staff.temporary_password_set": "Set a temporary password",
    "staff.temporary_password_expired": "The temporary password expired",
    "staff.password_changed": "Changed the password",
    "staff.password_reset": "Reset the password",
    "staff.password_reset_started": "Started a password reset",
    "staff.reset_code_sent": "Sent a password reset code",
    "staff.reset_code_verified": "Entered the right reset code",
    "staff.reset_code_failed": "Entered a wrong reset code",
    "staff.password_expiry_warned": "Warned that the password expires soon",
    "staff.signed_in": "Signed in",
    "staff.sign_in_failed": "A sign-in failed",
    "staff.locked": "Locked after too many failed sign-ins",
    "staff.unlocked": "Unlocked",
    "staff.bulk_invite": "Sent account invitations to several people",
    "staff.bulk_password_reset": "Sent password reset links to several people",
    "session.ended": "A session ended",
    "session.ended_all": "Signed out everywhere",
}

SESSION_REASONS = {
    "signed_out": "signed out",
    "signed_out_everywhere": "signed out everywhere",
    "admin_sign_out": "an admin signed them out",
    "disabled": "the account was disabled",
    "access_changed": "their access changed",
    "password_changed": "the password changed",
    "idle": "no activity for 30 minutes",
    "no_console_access": "no access to the admin console",
}

FIELD_WORDS = {"account_status": "account status", "mobile_access": "mobile app access"}


def describe(action: str, details: dict) -> str:
    """One audit event in words: what happened, then the detail that matters (channel, reason, fields)."""
    words = ACTION_WORDS.get(action) or action.replace(".", ": ").replace("_", " ").capitalize()
    extra = []
    if details.get("channel") in CHANNEL_WORDS:
        extra.append(CHANNEL_WORDS[details["channel"]])
    if action.startswith("session.") and details.get("reason"):
        extra.append(f"({SESSION_REASONS.get(details['reason'], str(details['reason']).replace('_', ' '))})")
    if action == "staff.person_updated" and details.get("fields"):
        extra.append("(" + ", ".join(FIELD_WORDS.get(f, str(f).replace("_", " ")) for f in details["fields"]) + ")")
    if details.get("job_id"):
        extra.append("(in a bulk run)")
    return " ".join([words, *extra])


def when(iso_time: str | None) -> str:
    """2026-12-04T08:48:07Z → 2026-12-04 08:48 UTC."""
    if not iso_time:
        return ""
    return iso_time.replace("T", " ")[:16] + " UTC"
