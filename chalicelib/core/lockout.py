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
from dataclasses import dataclass
from typing import Callable, TypeVar

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core.errors import Error, Locked, Throttled
from chalicelib.core.models import Counter

MAX_FAILURES = 5  # the default of PORTAL_SIGN_IN_MAX_FAILURES
WINDOW_SECONDS = 15 * 60
FIRST_LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
MEMORY_SECONDS = 24 * 3600
F = TypeVar("F", bound=Callable)


def max_failures() -> int:
    """Failed sign-ins in a window that lock an identity (5, as Cognito and Keycloak; the fuzzing stack, whose
    random wrong passwords would otherwise lock the accounts it signs in with, raises it)."""
    return int(os.environ.get("PORTAL_SIGN_IN_MAX_FAILURES", MAX_FAILURES))


def _key(scope: str, tenant_id: str, identifier: str) -> str:
    return f"lockout#{scope}#{tenant_id}#{identifier.strip().lower()}"


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt counted before its password is checked (see `attempt`)."""
    key: str
    number: int  # its place in the window: the MAX_FAILURES-th, when it fails, locks
    window_start: int
    lockouts: int  # lockouts so far (within the day remembered)


def _conditional_failed(exc: Exception) -> bool:
    """A refused condition, as opposed to a failure of DynamoDB itself (which is raised on)."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _lock_seconds(lockouts_before: int) -> int:
    return min(FIRST_LOCK_SECONDS * 2 ** lockouts_before, MAX_LOCK_SECONDS)


def locked_error(retry_after: int) -> Error:
    return Locked("account_locked", "Too many failed sign-ins; try again later.",
                    retry_after=max(1, int(retry_after)))


def attempt(scope: str, tenant_id: str, identifier: str) -> Attempt:
    """Counts one attempt on an identity before its password is checked, with one conditional write: allowed
    when the identity is not locked and fewer than MAX_FAILURES attempts were counted in the current window (or
    the window is over: a new one starts). Otherwise 423 `account_locked`, so of N concurrent guesses at most
    the allowance left is checked. Afterwards the caller reports `failed`, `clear` (a right password) or
    `release` (neither, e.g. a retired temporary password)."""
    key, current = _key(scope, tenant_id, identifier), int(time.time())
    not_locked = Counter.locked_until.does_not_exist() | (Counter.locked_until <= current)
    remember = Counter.ttl.set(current + MEMORY_SECONDS)
    counter = Counter(key)
    for _ in range(3):  # a concurrent attempt may open the new window between the two writes: try again
        try:  # one more attempt in the current window
            counter.update(actions=[Counter.hits.add(1), remember],
                           condition=not_locked & (Counter.window_start > current - WINDOW_SECONDS)
                           & (Counter.hits < max_failures()))
            break
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
        try:  # no counter yet, or its window is over: this attempt opens a new one (lockouts are kept)
            counter.update(actions=[Counter.hits.set(1), Counter.window_start.set(current), remember],
                           condition=not_locked & (Counter.counter_key.does_not_exist()
                                                   | (Counter.window_start <= current - WINDOW_SECONDS)))
            break
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
    else:
        raise _refusal(key, current)
    return Attempt(key, int(counter.hits), int(counter.window_start), int(counter.lockouts or 0))


def _refusal(key: str, current: int) -> Error:
    try:
        counter = Counter.get(key, consistent_read=True)
    except DoesNotExist:  # cleared meanwhile (a right password): try again at once
        return locked_error(1)
    if int(counter.locked_until or 0) > current:
        return locked_error(int(counter.locked_until) - current)
    # the allowance is taken by attempts still being checked: if they fail, this is the lock that follows
    return locked_error(_lock_seconds(int(counter.lockouts or 0)))


def failed(handle: Attempt) -> int | None:
    """The attempt was a wrong guess. Returns the lock duration when it locks the identity: the failure of the
    window's MAX_FAILURES-th attempt locks it for 1 minute, then 2, 4 ... up to an hour for each further lockout
    within a day; the lock starts a new window."""
    if handle.number < max_failures():
        return None  # it stays counted
    current = int(time.time())
    duration = _lock_seconds(handle.lockouts)
    Counter(handle.key).update(actions=[Counter.lockouts.add(1), Counter.locked_until.set(current + duration),
                                        Counter.hits.set(0), Counter.window_start.set(current),
                                        Counter.ttl.set(current + MEMORY_SECONDS)])
    return duration


def release(handle: Attempt) -> None:
    """The attempt was no wrong guess (nor a sign-in): it is given back, if its window is still the current one."""
    try:
        Counter(handle.key).update(actions=[Counter.hits.add(-1)],
                                   condition=(Counter.window_start == handle.window_start) & (Counter.hits > 0))
    except UpdateError as exc:
        if not _conditional_failed(exc):
            raise


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


def _count(key: str, window_seconds: int, limit: int | None = None) -> Counter | None:
    """One more hit in the key's fixed window (a new window when there is none or it is over), with one
    conditional write; with `limit`, only while the window holds fewer hits (None when it is full), so a budget
    is exact under concurrency."""
    counter, current = Counter(key), int(time.time())
    in_window = Counter.window_start > current - window_seconds
    for _ in range(3):  # a concurrent hit may open the new window between the two writes: count again
        try:
            counter.update(actions=[Counter.hits.add(1)],
                           condition=in_window if limit is None else in_window & (Counter.hits < limit))
            return counter
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
        try:  # no counter yet, or its window is over: open a new one (only one of concurrent hits does)
            counter.update(actions=[Counter.hits.set(1), Counter.window_start.set(current),
                                    Counter.ttl.set(current + window_seconds)],
                           condition=Counter.counter_key.does_not_exist()
                           | (Counter.window_start <= current - window_seconds))
            return counter
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
    if limit is not None:
        return None
    raise UpdateError(f"counter {key}: no window after three tries")


def _too_many(counter: Counter, window_seconds: int, message: str = "Too many requests; wait a little and try "
              "again.") -> Error:
    return Throttled("too_many_requests", message,
                    retry_after=max(1, int(counter.window_start) + window_seconds - int(time.time())))


def throttle(scope: str, key: str, limit: int, window_seconds: int) -> None:
    """Counts one request for `key`; past `limit` within the window, answers 429 with the seconds to wait.
    Unknown identifiers count like known ones, so the limit reveals nothing."""
    counter = _count(_throttle_key(scope, key), window_seconds)
    assert counter is not None  # (without a limit, a hit is always counted)
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


def _reserve_guess(key: str) -> int:
    """Reserves one wrong guess of the IP's budget before the flow runs (exact under concurrency: _count with a
    limit). Returns the window's start (to give the guess back); 429 when none is left."""
    counter = _count(key, GUESS_WINDOW_SECONDS, guesses_per_ip())
    if counter is not None:
        return int(counter.window_start)
    try:
        counter = Counter.get(key, consistent_read=True)
    except DoesNotExist:
        counter = Counter(key, window_start=int(time.time()))
    raise _too_many(counter, GUESS_WINDOW_SECONDS, FROM_YOUR_NETWORK)


def _give_back_guess(key: str, window_start: int) -> None:
    try:
        Counter(key).update(actions=[Counter.hits.add(-1)],
                            condition=(Counter.window_start == window_start) & (Counter.hits > 0))
    except UpdateError as exc:
        if not _conditional_failed(exc):
            raise


def limit_guesses_per_ip(scope: str, wrong_guess_code: str | tuple[str, ...]) -> Callable[[F], F]:
    """Decorates a flow that takes an `ip` argument: each call reserves one of that IP's `guesses_per_ip()` wrong
    guesses in this scope and hour before the flow runs (429 when none is left, even for the right secret), and
    gives it back unless the answer was a wrong guess (an Error with this code, or one of these codes)."""
    wrong_codes = (wrong_guess_code,) if isinstance(wrong_guess_code, str) else wrong_guess_code
    def wrap(flow: F) -> F:
        signature = inspect.signature(flow)

        @functools.wraps(flow)
        def guarded(*args, **kwargs):
            ip = signature.bind(*args, **kwargs).arguments.get("ip")
            key = _throttle_key(f"guesses-{scope}", ip or "unknown")
            window_start = _reserve_guess(key)
            wrong_guess = False
            try:
                return flow(*args, **kwargs)
            except Error as err:
                wrong_guess = err.code in wrong_codes
                raise
            finally:
                if not wrong_guess:
                    _give_back_guess(key, window_start)
        return guarded  # type: ignore[return-value]
    return wrap
