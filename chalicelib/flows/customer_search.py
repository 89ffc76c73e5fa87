"""Finding a customer the way a dispatcher types it (`GET /v1/customers?q=`), from the directory's index only,
so the cost does not grow with the number of customers:

- an email (anything with an @), in any case: the customers whose own record, or one of whose locations or
  contacts, carries that exact address (one GetItem on the email index of rule 2, one BatchGetItem);
- a phone (digits and + ( ) . - / spaces, 7 digits or more), in any common spelling: the customers whose record,
  or one of whose contacts, carries that number (one GetItem on the phone partition, one BatchGetItem);
- anything else: the customers with a word of their name starting with each word typed ("ngu fam" finds
  "Nguyen Family"), case and accents ignored (one Query on the partition of the longest word's first two
  letters, one BatchGetItem). Pages follow the index (next_cursor); a page of a several-word search may hold
  fewer than `limit` customers, and the next one more.

Records written before the index existed are found by name and phone once `reindex` ran for their tenant."""
from pynamodb.exceptions import DoesNotExist

from chalicelib.core import search_terms
from chalicelib.core.errors import Invalid
from chalicelib.core.identity import email_key
from chalicelib.core.models import Contact, Customer, RecordEmail
from chalicelib.core.paging import make_cursor, page_args
from chalicelib.flows import directory

MAX_QUERY_CHARS = 200


def search(tenant_id: str, q: str, query: dict | None = None) -> dict:
    """A page {items: [CustomerOut], next_cursor} of the tenant's customers matching q (see the module)."""
    limit, start = page_args(query or {})
    text = q.strip()
    if len(text) > MAX_QUERY_CHARS:
        raise Invalid("invalid_request", f"q must be at most {MAX_QUERY_CHARS} characters.", field="q")
    if "@" in text:
        return _page(tenant_id, _customer_ids(_refs(tenant_id, email_key(text))), limit)
    if search_terms.looks_like_phone(text):
        key = search_terms.phone_key(text)
        return _page(tenant_id, _customer_ids(_refs(directory.phones_partition(tenant_id), key) if key else set()),
                     limit)
    return _by_name(tenant_id, text, limit, start)


def _refs(partition: str, key: str) -> set[str]:
    try:
        return set(RecordEmail.get(partition, key).refs or ())
    except DoesNotExist:
        return set()


def _customer_ids(refs: set[str]) -> list[str]:
    """customer:<id>, location:<id>:<customer_id>, contact:<id>:<customer_id> -> the customers' ids."""
    return sorted({ref.split(":")[1] if ref.startswith("customer:") else ref.split(":")[2] for ref in refs})


def _customers(tenant_id: str, ids: list[str]) -> list[Customer]:
    found = {c.customer_id: c for c in Customer.batch_get([(tenant_id, i) for i in ids])}
    return [found[i] for i in ids if i in found]  # the index's order; a record deleted meanwhile is left out


def _page(tenant_id: str, ids: list[str], limit: int) -> dict:
    """An exact email or phone: its few customers, by name, in one page."""
    customers = sorted(_customers(tenant_id, ids[:limit]), key=lambda c: (c.name.casefold(), c.customer_id))
    return {"items": [directory.customer_out(c) for c in customers], "next_cursor": None}


def _by_name(tenant_id: str, text: str, limit: int, start: str | None) -> dict:
    typed = search_terms.words(text)
    if not typed:
        return {"items": [], "next_cursor": None}
    lead = max(typed, key=len)
    if len(lead) < search_terms.MIN_QUERY_CHARS:
        raise Invalid("query_too_short", f"Type at least {search_terms.MIN_QUERY_CHARS} letters of a name.",
                      field="q")
    partition = directory.names_partition(tenant_id, lead)
    if start and not start.startswith(lead):  # outside the query's key range: DynamoDB would refuse it
        raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor")
    start_key = {"tenant_id": {"S": partition}, "email": {"S": start}} if start else None
    results = RecordEmail.query(partition, RecordEmail.email.startswith(lead), limit=limit,
                                last_evaluated_key=start_key)
    ids = list(dict.fromkeys(entry.email.rpartition("#")[2] for entry in results))
    items = []
    for customer in _customers(tenant_id, ids):
        words = search_terms.words(customer.name)  # the record as it is now, and every word typed
        if all(any(w.startswith(t) for w in words) for t in typed):
            items.append(directory.customer_out(customer))
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "email")}


def reindex(tenant_id: str) -> dict:
    """Writes the name and phone entries of every customer and contact of a tenant (idempotent): for records
    written before the search index existed. Returns the counts."""
    from chalicelib.core.models import transaction
    counts = {"customers": 0, "contacts": 0}
    for customer in Customer.query(tenant_id):
        if search_terms.phone_keys(customer.phones) or search_terms.name_words(customer.name):
            with transaction() as tx:
                directory.index_terms(tx, tenant_id, f"customer:{customer.customer_id}",
                                      phones=([], list(customer.phones or [])), names=([], [customer.name]))
        counts["customers"] += 1
    for contact in Contact.query(tenant_id):
        if search_terms.phone_key(contact.phone):
            with transaction() as tx:
                directory.index_terms(tx, tenant_id, f"contact:{contact.contact_id}:{contact.customer_id}",
                                      phones=([], [contact.phone or ""]), names=([], []))
        counts["contacts"] += 1
    return counts
