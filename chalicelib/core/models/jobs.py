"""Bulk jobs (portal CSV runs, staff bulk actions)."""
from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import now, table_meta


class Job(Model):
    Meta = table_meta("jobs")
    tenant_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    # queued | running | done | failed; a reviewed bulk upload: running | ready | sending | done, or expired
    status = UnicodeAttribute(default="running")
    summary: MapAttribute[str, Any] = MapAttribute(default=dict)
    source = UnicodeAttribute(null=True)  # e.g. the S3 key a bulk run reads
    error = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    expires_at = NumberAttribute(null=True)  # a `ready` bulk job can be sent until then
    # A bulk run continued across invocations (flows/portal/bulk_checkpoints): where the next one resumes, and
    # which invocation may work on the job until when (a lease: two deliveries never run one job at once).
    checkpoint: MapAttribute[str, Any] = MapAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    stall_resumes = NumberAttribute(default=0)  # times the schedule restarted it from its checkpoint
