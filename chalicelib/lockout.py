"""Counters against guessing, all in the counters table (DynamoDB, TTL'd):

- sign-in lockout with growing back-off, shared by staff and portal sign-in: 5 failures within 15 minutes lock
  the identity for 1 minute, then 2, 4, 8 … up to an hour for each further lockout within a day; unknown
  identities are counted the same way, so a lockout does not reveal whether an account exists;
- fixed-window rate limits per identifier or IP for public endpoints (`throttle`);
- failed guesses per IP for sign-in and the endpoints that take a token (`limit_guesses_per_ip`)."""
import functools
import inspect
import os
import time
from typing import Callable, TypeVar

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.api import ApiError
from chalicelib.models import Counter

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
FIRST_LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
MEMORY_SECONDS = 24 * 3600
F = TypeVar("F", bound=Callable)


def _key(scope: str, tenant_id: str, identifier: str) -> str:
    return f"lockout#{scope}#{tenant_id}#{identifier.strip().lower()}"


def ensure_not_locked(scope: str, tenant_id: str, identifier: str) -> None:
    try:
        counter = Counter.get(_key(scope, tenant_id, identifier), consistent_read=True)
    except DoesNotExist:
        return
    remaining = int(counter.locked_until or 0) - int(time.time())
    if remaining > 0:
        raise ApiError(423, "account_locked", "Too many failed sign-ins; try again later.", retry_after=remaining)


def record_failure(scope: str, tenant_id: str, identifier: str) -> int | None:
    """Counts one failure; returns the lock duration when this failure locks the identity."""
    key, now = _key(scope, tenant_id, identifier), int(time.time())
    counter = Counter(key)
    try:  # a failure inside the window adds to it
        counter.update(actions=[Counter.hits.add(1), Counter.ttl.set(now + MEMORY_SECONDS)],
                       condition=Counter.window_start >= now - WINDOW_SECONDS)
    except UpdateError:  # no counter yet, or the window is over: this failure opens a new window
        counter.update(actions=[Counter.hits.set(1), Counter.window_start.set(now),
                                Counter.ttl.set(now + MEMORY_SECONDS)])
    if counter.hits < MAX_FAILURES:
        return None
    lockouts = int(counter.lockouts or 0) + 1
    duration = min(FIRST_LOCK_SECONDS * 2 ** (lockouts - 1), MAX_LOCK_SECONDS)
    counter.update(actions=[Counter.lockouts.set(lockouts), Counter.locked_until.set(now + duration),
                            Counter.hits.set(0), Counter.window_start.set(now)])
    return duration


def clear(scope: str, tenant_id: str, identifier: str) -> None:
    Counter(_key(scope, tenant_id, identifier)).delete()


def locked_until(scope: str, tenant_id: str, identifiers: list[str]) -> dict[str, int]:
    """When each identity's lockout ends (only those locked now), read in batches of 100: the admin's people
    list shows `locked` from this without one read per person."""
    if not identifiers:
        return {}
    keys = {_key(scope, tenant_id, i): i for i in identifiers}
    current = int(time.time())
    return {keys[c.counter_key]: int(c.locked_until) for c in Counter.batch_get(list(keys))
            if int(c.locked_until or 0) > current}


# --- rate limits for public endpoints: a fixed window per key -----------------------------------------------

def _throttle_key(scope: str, key: str) -> str:
    import hashlib
    # hashed: the counters table then holds no email address, mobile number or IP in clear
    return f"throttle#{scope}#{hashlib.sha256(key.strip().lower().encode()).hexdigest()[:32]}"


def _count(key: str, window_seconds: int) -> Counter:
    """One more hit in the key's fixed window (a new window when there is none or it is over)."""
    counter, current = Counter(key), int(time.time())
    try:
        counter.update(actions=[Counter.hits.add(1)], condition=Counter.window_start > current - window_seconds)
    except UpdateError:  # no counter yet, or its window is over: open a new one
        counter.update(actions=[Counter.hits.set(1), Counter.window_start.set(current),
                                Counter.ttl.set(current + window_seconds)])
    return counter


def _too_many(counter: Counter, window_seconds: int, message: str = "Too many requests; wait a little and try "
              "again.") -> ApiError:
    return ApiError(429, "too_many_requests", message,
                    retry_after=max(1, int(counter.window_start) + window_seconds - int(time.time())))


def throttle(scope: str, key: str, limit: int, window_seconds: int) -> None:
    """Counts one request for `key`; past `limit` within the window, answers 429 with the seconds to wait.
    Unknown identifiers count like known ones, so the limit reveals nothing."""
    counter = _count(_throttle_key(scope, key), window_seconds)
    if counter.hits > limit:
        raise _too_many(counter, window_seconds)


# --- failed guesses per IP: sign-in and every endpoint that takes a token -----------------------------------
# The per-account lockout stops guessing one password; this stops one client guessing across many accounts
# (password spraying, credential stuffing) or guessing link and refresh tokens. Only wrong guesses count, so an
# office whose technicians all sign in from one address is not throttled for signing in.

GUESS_WINDOW_SECONDS = 3600
FROM_YOUR_NETWORK = "Too many attempts from your network; try again later."


def guesses_per_ip() -> int:
    """Failed guesses one IP may make per scope and hour (Auth0's suspicious-IP default is 100)."""
    return int(os.environ.get("PORTAL_FAILED_GUESSES_PER_IP", "100"))


def _refuse_if_out_of_guesses(key: str) -> None:
    try:
        counter = Counter.get(key, consistent_read=True)
    except DoesNotExist:
        return
    if int(counter.window_start or 0) > time.time() - GUESS_WINDOW_SECONDS \
            and int(counter.hits or 0) >= guesses_per_ip():
        raise _too_many(counter, GUESS_WINDOW_SECONDS, FROM_YOUR_NETWORK)


def limit_guesses_per_ip(scope: str, wrong_guess_code: str) -> Callable[[F], F]:
    """Decorates a flow that takes an `ip` argument: once that IP has made `guesses_per_ip()` wrong guesses
    (ApiErrors with this code) in this scope within the hour, it answers 429 before doing anything."""
    def wrap(flow: F) -> F:
        signature = inspect.signature(flow)

        @functools.wraps(flow)
        def guarded(*args, **kwargs):
            ip = signature.bind(*args, **kwargs).arguments.get("ip")
            key = _throttle_key(f"guesses-{scope}", ip or "unknown")
            _refuse_if_out_of_guesses(key)
            try:
                return flow(*args, **kwargs)
            except ApiError as err:
                if err.code == wrong_guess_code:
                    _count(key, GUESS_WINDOW_SECONDS)
                raise
        return guarded  # type: ignore[return-value]
    return wrap
