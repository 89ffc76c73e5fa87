"""Whether a tenant is active, as every call asks it. A disabled tenant's staff, portal users and partners are
refused at sign-in and on every call (chalicelib/web/api.py checks on each request).

Each warm container keeps the answer for CACHE_SECONDS (PORTAL_TENANT_CACHE_SECONDS, 5 by default), so a disable
reaches every container within that time (at once on the container that made it) and costs no read on most calls.
Sign-in reads the tenant itself, uncached."""
import os
import time

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.models import Tenant

CACHE_SECONDS = float(os.environ.get("PORTAL_TENANT_CACHE_SECONDS", "5"))
_clock = time.monotonic  # the cache's clock (tests move it)
_active: dict[str, tuple[float, bool]] = {}  # tenant_id -> (when read, active)


def forget(tenant_id: str) -> None:
    """This container's answer is stale (it just changed the tenant's status)."""
    _active.pop(tenant_id, None)


def cached_active(tenant_id: str) -> bool | None:
    """This container's answer for the tenant if younger than CACHE_SECONDS, else None (read it, remember it)."""
    hit = _active.get(tenant_id)
    return hit[1] if hit is not None and _clock() - hit[0] < CACHE_SECONDS else None


def remember(tenant_id: str, active: bool) -> bool:
    if len(_active) > 10_000:  # a container serves a few tenants; never let the cache grow without bound
        _active.clear()
    _active[tenant_id] = (_clock(), active)
    return active


def is_active(tenant_id: str) -> bool:
    cached = cached_active(tenant_id)
    if cached is not None:
        return cached
    try:
        return remember(tenant_id, Tenant.get(tenant_id).status == "active")
    except DoesNotExist:
        return remember(tenant_id, False)
