"""The People section's words: account statuses, roles, and why a bulk run leaves someone out. A person's audit
trail is put into words by words.py, which every console activity view shares."""

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


def when(iso_time: str | None) -> str:
    """2026-12-04T08:48:07Z → 2026-12-04 08:48 UTC."""
    if not iso_time:
        return ""
    return iso_time.replace("T", " ")[:16] + " UTC"
