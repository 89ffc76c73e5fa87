"""What can go wrong in a flow, by kind, with a stable `code` and a message in words; no HTTP here.

Flows raise these; the web layer (chalicelib/web/api.py) maps each kind to its status and the error envelope,
and the hosted pages map the codes to words beside a field. `extra` carries what a client needs to act (the field
at fault, `retry_after` seconds) and goes into the envelope as it is."""
from typing import Any


class Error(Exception):
    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


class Invalid(Error):
    """The request itself is wrong (a field, a combination of fields)."""


class Unauthenticated(Error):
    """No identity, or one that is not (or no longer) valid: a wrong password, an ended session."""


class Forbidden(Error):
    """A known caller that may not do this."""


class NotFound(Error):
    """Nothing of that id for this caller (another tenant's ids are not found either)."""


class Conflict(Error):
    """The current state does not allow it (already exists, was changed meanwhile, the last admin)."""


class Gone(Error):
    """A link or token that was used, replaced or expired."""


class TooLarge(Error):
    """More than the product accepts in one go."""


class Locked(Error):
    """Locked after too many failed attempts; `retry_after` says for how long."""


class Throttled(Error):
    """Too many requests in a window; `retry_after` says when to try again."""
