"""Counters: lockouts, rate limits, caps, dead-letter reasons (TTL'd)."""

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import now, table_meta


class Counter(Model):
    """Failure counters and rate limits (sign-in lockout, throttles), expiring with TTL."""
    Meta = table_meta("counters")
    counter_key = UnicodeAttribute(hash_key=True)
    # stored as "count"; named otherwise in Python, where `count` would hide Model.count (the item count query)
    hits = NumberAttribute(default=0, attr_name="count")
    window_start = NumberAttribute(default=now)
    locked_until = NumberAttribute(default=0)
    lockouts = NumberAttribute(default=0)
    reason = UnicodeAttribute(null=True)  # failure#… items: why a queued message failed (see dead_letters)
    ttl = NumberAttribute()
