"""The audit trail: one item per security-relevant action. Details must never carry a secret."""
import secrets
import time

from chalicelib.models import AuditEvent

FORBIDDEN_DETAIL_KEYS = {"password", "new_password", "token", "code", "secret", "client_secret"}


def record(tenant_id: str, action: str, *, actor: str | None = None, target: str | None = None,
           ip: str | None = None, **details) -> None:
    assert not FORBIDDEN_DETAIL_KEYS & set(details), "secrets never go into the audit trail"
    now_ms = int(time.time() * 1000)
    AuditEvent(tenant_id, f"{now_ms:013d}#{secrets.token_hex(4)}", at=now_ms // 1000, action=action,
               actor=actor, target=target, ip=ip, details=details).save()
