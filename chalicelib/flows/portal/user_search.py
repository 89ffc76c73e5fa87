"""Portal users by the start of their email (`GET /v1/portal/users?q=`), case-insensitive, from indexes only.

Every portal user's email was on a customer, location or contact record when the user was made (rule 2: an
invitation, a bulk run, sign-up and Google/Microsoft sign-in all require it), so it is a key of the record-email
index, whose items stay when an address leaves its records (they only lose their refs). The search reads that
index's keys starting with what was typed, in order (a Query), and the portal users of those emails (a
BatchGetItem: ids derive from the email), so its cost follows the page, not the number of users. The status and
customer_id filters apply to what is found; a page holds at most `limit` users and may hold fewer (emails on
records that have no portal user are passed over, at most READ_ROUNDS x 100 of them per page)."""
from chalicelib.core.errors import Invalid
from chalicelib.core.models import PortalUser, RecordEmail
from chalicelib.core.paging import make_cursor, page_args
from chalicelib.flows.portal.invitations import portal_user_id, user_out

MAX_QUERY_CHARS = 254
READ_ROUNDS = 3
ROUND_SIZE = 100


def prefix_of(q: str) -> str:
    """What was typed, as the start of a stored (normalised) email: a whole address as normalise_email keys it
    (its domain in IDNA form), anything shorter lower-cased."""
    from chalicelib.core.identity import normalise_email
    text = q.strip()
    try:
        return normalise_email(text)
    except ValueError:
        return text.lower()


def search(tenant_id: str, q: str, query: dict | None = None) -> dict:
    """A page {items: [PortalUserOut], next_cursor} of the tenant's portal users whose email starts with q,
    in email order, keeping the list's `status` and `customer_id` filters."""
    query = query or {}
    limit, start = page_args(query)
    status, customer_id = query.get("status"), query.get("customer_id")
    if status is not None and status not in ("invited", "active", "disabled"):
        raise Invalid("invalid_request", "status must be invited, active or disabled.", field="status")
    if len(q.strip()) > MAX_QUERY_CHARS:
        raise Invalid("invalid_request", f"q must be at most {MAX_QUERY_CHARS} characters.", field="q")
    prefix = prefix_of(q)
    if start and not start.startswith(prefix):  # outside the query's key range: DynamoDB would refuse it
        raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor")
    items: list = []
    last = start
    for _ in range(READ_ROUNDS):
        start_key = {"tenant_id": {"S": tenant_id}, "email": {"S": last}} if last else None
        page = RecordEmail.query(tenant_id, RecordEmail.email.startswith(prefix), limit=ROUND_SIZE,
                                 last_evaluated_key=start_key, attributes_to_get=["tenant_id", "email"])
        emails = [entry.email for entry in page]
        users = {u.email: u for u in PortalUser.batch_get([(tenant_id, portal_user_id(e)) for e in emails])} \
            if emails else {}
        for email in emails:
            last = email
            user = users.get(email)
            if user is None or (status and user.status != status) \
                    or (customer_id and customer_id not in (user.customer_ids or ())):
                continue
            items.append(user_out(user))
            if len(items) == limit:
                more = email != emails[-1] or page.last_evaluated_key is not None
                return {"items": items, "next_cursor": _cursor(email) if more else None}
        if page.last_evaluated_key is None:
            return {"items": items, "next_cursor": None}
    return {"items": items, "next_cursor": _cursor(last) if last else None}


def _cursor(email: str) -> str | None:
    return make_cursor({"email": {"S": email}}, "email")
