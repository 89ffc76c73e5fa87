"""Employees and technicians, and the claims that keep their email, mobile and username unique."""

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core.models.base import now, string_list, table_meta


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
    Meta = table_meta("people")
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
    # The second factor (flows/staff/mfa*.py). The authenticator app's secret only sealed (core/security/sealed.py),
    # the one being set up apart until its first code confirms it; the last time step a code was accepted for,
    # moved on by a conditional write so a code is accepted once. Recovery codes as keyed hashes, one removed per
    # use by a conditional write.
    totp_secret = UnicodeAttribute(null=True)
    totp_added_at = NumberAttribute(null=True)
    totp_last_step = NumberAttribute(null=True)
    totp_pending = UnicodeAttribute(null=True)
    totp_pending_at = NumberAttribute(null=True)
    recovery_codes = UnicodeSetAttribute(null=True)
    recovery_codes_at = NumberAttribute(null=True)
    # Passkeys (flows/staff/passkeys.py), by their public id: {id: {cred, key, count, name, added_at, used_at,
    # transports, backed_up}}. Public keys and credential ids are not secrets; each credential id is also a Claim
    # (passkey_ceremony.claim_of), which finds the person from the credential alone and keeps it unique.
    passkeys: MapAttribute[str, Any] = MapAttribute(null=True)
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
    Meta = table_meta("claims")
    tenant_id = UnicodeAttribute(hash_key=True)
    claim = UnicodeAttribute(range_key=True)
    owner_id = UnicodeAttribute()
    created_at = NumberAttribute(default=now)
