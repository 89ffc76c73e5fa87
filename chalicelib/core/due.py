"""When the schedule (flows/expiry.py) next has something to do for a person, kept in the person's item.

What is due is found without a scan: every write that gives a person something that will fall due (a temporary
password, an invitation, a password whose warning is ahead) also sets `due_at`, the earliest of those times, and
`due_key` = "due" (`due_actions`, in the same write); the people table's sparse index `by-due` holds only those
people, so a run queries `due_at <= now` and reads exactly the people it acts for. due_at may be early (a run that
finds nothing to do moves it on, or removes it), never late. The other writes of the people table (a role, a
sign-out, a lockout) do not touch the index: it projects keys only."""
from typing import Any

from chalicelib.core.models import Person

PASSWORD_MAX_AGE_SECONDS = 365 * 24 * 3600  # a staff password expires after a year
WARN_BEFORE_SECONDS = 14 * 24 * 3600
DUE = "due"
_UNSET: Any = object()


def next_due(person: Person, at: int | None = None, **changes) -> int | None:
    """When the schedule next has something to do for the person as it is after `changes` (field -> new value,
    None for removed), or None. Given `at` (a run's time), a password already expired has no warning left."""
    def get(field):
        value = changes.get(field, _UNSET)
        return getattr(person, field) if value is _UNSET else value
    times = []
    if get("temporary_password_expires_at"):
        times.append(get("temporary_password_expires_at"))
    if get("account_status") == "invited" and get("invitation_expires_at"):
        times.append(get("invitation_expires_at"))
    set_at = get("password_set_at")
    if get("account_status") == "active" and get("password_hash") and set_at and not get("must_change_password") \
            and get("expiry_warning_for") != set_at and (at is None or set_at + PASSWORD_MAX_AGE_SECONDS > at):
        times.append(set_at + PASSWORD_MAX_AGE_SECONDS - WARN_BEFORE_SECONDS)
    return min(times, default=None)


def due_actions(person: Person, **changes) -> list:
    """The update actions that keep the person's place in the `by-due` index right, for a write that makes
    `changes`: add them to that write."""
    due = next_due(person, **changes)
    if due is None:
        return [Person.due_key.remove(), Person.due_at.remove()]
    return [Person.due_key.set(DUE), Person.due_at.set(due)]


def due_fields(person: Person, **changes) -> dict:
    """The same as attribute values, for a write that takes a dict (people.update) or a new item."""
    due = next_due(person, **changes)
    return {"due_key": DUE if due is not None else None, "due_at": due}
