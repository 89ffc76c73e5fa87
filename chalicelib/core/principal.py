"""Who is calling: what the web layer's guard read from the caller's token (and, for staff and portal users,
their live session), handed to the flows."""
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Principal:
    kind: str  # staff | portal | partner | password_change
    tenant_id: str
    subject: str
    permissions: frozenset = frozenset()
    claims: dict = field(default_factory=dict)
    live: Any = None  # sessions.Live: the session and account the guard read for this call (staff and portal)
