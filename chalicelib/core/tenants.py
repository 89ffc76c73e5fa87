"""Reading a tenant, and whether it is active, as every call asks it. A disabled tenant's staff, portal users and
partners are refused at sign-in and on every call (chalicelib/web/api.py checks on each request).

Every read of a tenant goes through here: `get` (one the caller knows exists), `find` (None when there is none),
`active` (None unless it is active: what sign-in, sign-up and the hosted pages ask) and `is_active` (the per-call
guard's, cached). Each read is made as the caller asks (`consistent`); only `is_active` remembers its answer.

Each warm container keeps is_active's answer for CACHE_SECONDS (PORTAL_TENANT_CACHE_SECONDS, 5 by default), so a
disable reaches every container within that time (at once on the container that made it) and costs no read on most
calls. Sign-in reads the tenant itself, uncached (`active`)."""
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


MAX_ID_LENGTH = 64  # no tenant id is longer (the request schemas' limit): a longer one is not sent to DynamoDB


def get(tenant_id: str, *, consistent: bool = False) -> Tenant:
    """A tenant the caller knows exists (the guard let its caller in, or a record of it names it); DoesNotExist
    (the queue's retry, the API's 500) if it does not."""
    return Tenant.get(tenant_id, consistent_read=consistent)


def find(tenant_id: str | None, *, consistent: bool = False) -> Tenant | None:
    """The tenant, or None when there is none (an empty or over-long id is not read at all)."""
    if not tenant_id or len(tenant_id) > MAX_ID_LENGTH:
        return None
    try:
        return get(tenant_id, consistent=consistent)
    except DoesNotExist:
        return None


def active(tenant_id: str | None, *, consistent: bool = False) -> Tenant | None:
    """The tenant if it is active, else None. Read now, never from the cache: sign-in and everything else a
    person starts without a session sees a disable at once."""
    tenant = find(tenant_id, consistent=consistent)
    return tenant if tenant is not None and tenant.status == "active" else None


def is_active(tenant_id: str) -> bool:
    """The per-call guard's question, answered from this container's cache while it is fresh."""
    cached = cached_active(tenant_id)
    if cached is not None:
        return cached
    return remember(tenant_id, active(tenant_id) is not None)
