"""Pages of a list, and the times in them: the cursor holds only the range key (base64 JSON), never the
tenant, which always comes from the caller's token."""
import base64
import json
from datetime import datetime, timezone

from chalicelib.core.errors import Invalid

MAX_PAGE = 100


def iso(ts: int | float | None) -> str | None:
    return iso_at(ts) if ts else None


def iso_at(ts: int | float) -> str:
    """A time every record has (created_at, updated_at, an audit event's at)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def page_args(query: dict) -> tuple[int, str | None]:
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        raise Invalid("invalid_request", "limit must be a number.", field="limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid("invalid_request", f"limit must be between 1 and {MAX_PAGE}.", field="limit")
    cursor = query.get("cursor")
    if cursor is None:
        return limit, None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["k"]
        if not isinstance(value, str):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor") from None
    return limit, value


def make_cursor(last_key: dict | None, range_attr: str) -> str | None:
    if not last_key:
        return None
    value = last_key[range_attr]["S"]
    return base64.urlsafe_b64encode(json.dumps({"k": value}).encode()).decode().rstrip("=")
