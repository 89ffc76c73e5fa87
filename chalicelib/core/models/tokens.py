"""Single-use link tokens (stored as hashes)."""
from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import now, table_meta


class Token(Model):
    """A single-use token, stored by its SHA-256 only. `used_at` is set by one conditional write."""
    Meta = table_meta("tokens")
    token_hash = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # invitation | portal_reset | staff_invite | staff_reset | password_change | …
    tenant_id = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    expires_at = NumberAttribute()
    ttl = NumberAttribute()
    used_at = NumberAttribute(null=True)
    # Staff password-reset flows (kind staff_reset_flow): the current code's hash, its expiry, how many codes
    # were sent and how many verifications were tried (the flow is dead at 5).
    code_hash = UnicodeAttribute(null=True)
    code_expires_at = NumberAttribute(null=True)
    sends = NumberAttribute(default=0)
    attempts = NumberAttribute(default=0)
    revoked = UnicodeAttribute(null=True)  # the error code a revoked link answers with, e.g. invitation_replaced
    data: MapAttribute[str, Any] = MapAttribute(default=dict)
    created_at = NumberAttribute(default=now)
