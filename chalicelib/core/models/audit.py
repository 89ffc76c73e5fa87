"""The audit trail and its indexes."""
from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta


class AuditByTarget(GlobalSecondaryIndex):
    """One subject's trail: the events about it (target), by time."""
    class Meta:
        index_name = "by-trail"
        projection = AllProjection()
    trail_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<target>"
    event_id = UnicodeAttribute(range_key=True)


class AuditByActor(GlobalSecondaryIndex):
    """The events one subject did to another (actor != target; an event about itself is in by-trail)."""
    class Meta:
        index_name = "by-actor"
        projection = AllProjection()
    actor_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<actor>"
    event_id = UnicodeAttribute(range_key=True)


class AuditEvent(Model):
    """Who did what to whom, when, from where. Never holds a password, token or code."""
    Meta = table_meta("audit")
    tenant_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)  # "<ms timestamp>#<random>": sorts by time
    at = NumberAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute(null=True)
    target = UnicodeAttribute(null=True)
    ip = UnicodeAttribute(null=True)
    details: MapAttribute[str, Any] = MapAttribute(default=dict)
    trail_key = UnicodeAttribute(null=True)  # "<tenant_id>#<target>" when there is a target
    by_trail = AuditByTarget()
    actor_key = UnicodeAttribute(null=True)  # "<tenant_id>#<actor>" when there is an actor other than the target
    by_actor = AuditByActor()
