"""One-off (issue 15): rewrites `chalicelib.<old>` imports to the core/flows/web/events layout. Kept in tools/
while branches cut before the move are merged; run on files: python tools/relayout.py FILE..."""
import re
import sys

MOVES = {
    # core: imports nothing from flows, web or events
    "config": "core.config", "models": "core.models", "security": "core.security", "single_use": "core.single_use",
    "lockout": "core.lockout", "identity": "core.identity", "audit": "core.audit", "tenants": "core.tenants",
    "messaging": "core.messaging", "observability": "core.observability", "text": "core.text",
    "sessions": "core.sessions", "dead_letters": "core.dead_letters",
    # flows: one module per flow
    "directory": "flows.directory", "partners": "flows.partners", "expiry": "flows.expiry",
    "invitations": "flows.portal.invitations", "bulk_invites": "flows.portal.bulk_invites",
    "email_scan": "flows.portal.email_scan", "portal_access": "flows.portal.portal_access",
    "portal_sessions": "flows.portal.portal_sessions", "access_links": "flows.portal.access_links",
    "oidc": "flows.portal.oidc",
    "staff_accounts": "flows.staff.staff_accounts", "people": "flows.staff.people",
    "staff_signin": "flows.staff.staff_signin", "staff_recovery": "flows.staff.staff_recovery",
    # web: the only place that knows HTTP
    "api": "web.api", "openapi": "web.openapi", "pages": "web.pages",
    # events: thin adapters
    "sender": "events.sender",
}
NAMES = "|".join(sorted(MOVES, key=len, reverse=True))


def _package_and_name(new: str) -> tuple[str, str]:
    package, _, name = new.rpartition(".")
    return package, name


def _split_from_import(match: re.Match) -> str:
    """`from chalicelib import a, b as c` -> one line per new package."""
    indent, names = match.group(1), match.group(2)
    groups: dict[str, list[str]] = {}
    for part in [p.strip() for p in names.strip("()").split(",") if p.strip()]:
        base = part.split()[0]
        if base in MOVES:
            package, name = _package_and_name(MOVES[base])
            groups.setdefault(f"chalicelib.{package}", []).append(part.replace(base, name, 1))
        else:
            groups.setdefault("chalicelib", []).append(part)
    return "\n".join(f"{indent}from {pkg} import {', '.join(parts)}" for pkg, parts in groups.items())


def rewrite(text: str) -> str:
    text = re.sub(r"^([ \t]*)from chalicelib import ([^\n()]+|\([^)]*\))", _split_from_import, text, flags=re.M)
    # chalicelib.<old>[.<rest>] anywhere else: from-imports, import strings, patch targets, docs
    text = re.sub(rf"\bchalicelib\.({NAMES})\b", lambda m: f"chalicelib.{MOVES[m.group(1)]}", text)
    return text


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as f:
            old = f.read()
        new = rewrite(old)
        if new != old:
            with open(path, "w") as f:
                f.write(new)
            print("rewrote", path)
