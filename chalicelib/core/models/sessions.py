"""Sessions of staff, portal users and access-link holders, and refresh tokens."""

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.models.base import now_ms, table_meta


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
    Meta = table_meta("sessions")
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
    # how it started: password | invitation | google | microsoft | access_link
    kind = UnicodeAttribute(default="password")
    epoch = NumberAttribute(default=0)  # the account's session_epoch when the sign-in read it
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    # An app's session (chalicelib/flows/oauth): the app it belongs to; on its refresh tokens also the scope
    # granted and, for a link holder, the link (its hash prefix), which must still be the customer's.
    client_id = UnicodeAttribute(null=True)
    scope = UnicodeAttribute(null=True)
    link = UnicodeAttribute(null=True)
