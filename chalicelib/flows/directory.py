"""The tenant's directory: customers, their locations and contacts. Every email on a record is also indexed in
RecordEmail (same transaction), which is how invitations and sign-up check DESIGN rule 2; so are the phones of
customers and contacts and the words of customers' names, in partitions of their own, for the search
(flows/customer_search.py)."""
import uuid
from typing import Annotated

from pydantic import Field
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.core import search_terms
from chalicelib.core.errors import Conflict, Invalid, NotFound
from chalicelib.core.identity import Email
from chalicelib.core.models import Contact, Customer, Location, RecordEmail, now, transaction
from chalicelib.core.paging import iso_at, make_cursor, page_args
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine

Name = Annotated[OneLine, Field(min_length=1, max_length=200)]
Text = Annotated[OneLine, Field(min_length=1, max_length=500)]
Phone = Annotated[OneLine, Field(min_length=3, max_length=32)]
EmailList = Annotated[list[Email], Field(max_length=20)]


class CustomerCreate(Strict):
    name: Name
    emails: EmailList = []
    phones: Annotated[list[Phone], Field(max_length=20)] = []
    billing_address: Text | None = None


class CustomerPatch(Strict):
    name: Name | None = None
    emails: EmailList | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] | None = None
    billing_address: Text | None = None


class LocationCreate(Strict):
    address: Text
    name: Name | None = None
    emails: EmailList = []


class LocationPatch(Strict):
    address: Text | None = None
    name: Name | None = None
    emails: EmailList | None = None


class ContactCreate(Strict):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    send_portal_invite: bool = False


class ContactPatch(Strict):
    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None


class CustomerOut(Shape):
    customer_id: str
    name: str
    emails: list[str]
    phones: list[str]
    billing_address: str | None = None
    created_at: str
    updated_at: str


class LocationOut(Shape):
    location_id: str
    customer_id: str
    name: str | None = None
    address: str
    emails: list[str]
    created_at: str
    updated_at: str


class ContactOut(Shape):
    contact_id: str
    customer_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    created_at: str
    updated_at: str


class CustomerPage(Shape):
    items: list[CustomerOut]
    next_cursor: str | None = None


class LocationPage(Shape):
    items: list[LocationOut]
    next_cursor: str | None = None


class ContactPage(Shape):
    items: list[ContactOut]
    next_cursor: str | None = None


def _dedupe(emails: list[str]) -> list[str]:
    return list(dict.fromkeys(emails))


def _page(model, tenant_id: str, range_attr: str, query: dict, out):
    limit, start = page_args(query)
    start_key = {"tenant_id": {"S": tenant_id}, range_attr: {"S": start}} if start else None
    results = model.query(tenant_id, limit=limit, last_evaluated_key=start_key)
    items = [out(item) for item in results]
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, range_attr)}


# --- email index --------------------------------------------------------------------------------------------

def _index_emails(tx, tenant_id: str, ref: str, old: list[str], new: list[str]) -> None:
    for email in set(new) - set(old):
        tx.update(RecordEmail(tenant_id, email), actions=[RecordEmail.refs.add({ref})])
    for email in set(old) - set(new):
        tx.update(RecordEmail(tenant_id, email), actions=[RecordEmail.refs.delete({ref})])


def phones_partition(tenant_id: str) -> str:
    """The search index's partitions sit beside the email index in its table, under hash keys no email index
    uses (tenant ids hold no #): one for phones (key: search_terms.phone_key, refs as for emails) and one per
    first two letters of a name's word (key: "<word>#<customer_id>")."""
    return f"{tenant_id}#phones"


def names_partition(tenant_id: str, word: str) -> str:
    return f"{tenant_id}#names:{word[:search_terms.MIN_QUERY_CHARS]}"


def index_terms(tx, tenant_id: str, ref: str, phones: tuple[list[str], list[str]],
                 names: tuple[list[str], list[str]]) -> None:
    old, new = (set(search_terms.phone_keys(p)) for p in phones)
    _index_emails(tx, phones_partition(tenant_id), ref, list(old), list(new))
    customer_id = ref.split(":")[1]
    old_words, new_words = ({w for name in side for w in search_terms.name_words(name)} for side in names)
    for word in new_words - old_words:
        tx.save(RecordEmail(names_partition(tenant_id, word), f"{word}#{customer_id}", refs={ref}))
    for word in old_words - new_words:
        tx.delete(RecordEmail(names_partition(tenant_id, word), f"{word}#{customer_id}"))


def _write(record, tenant_id: str, ref: str, old_emails: list[str], new_emails: list[str], *,
           phones: tuple[list[str], list[str]] = ([], []), names: tuple[list[str], list[str]] = ([], [])):
    try:
        with transaction() as tx:
            _index_emails(tx, tenant_id, ref, old_emails, new_emails)
            index_terms(tx, tenant_id, ref, phones, names)
            tx.save(record)  # the version attribute makes a concurrent edit fail rather than be lost
    except TransactWriteError:
        raise Conflict("edit_conflict", "Someone else changed this record at the same time; try again.") \
            from None
    return record


# --- customers ----------------------------------------------------------------------------------------------

def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(customer_id=c.customer_id, name=c.name, emails=list(c.emails or []),
                       phones=list(c.phones or []), billing_address=c.billing_address,
                       created_at=iso_at(c.created_at), updated_at=iso_at(c.updated_at))


def get_customer(tenant_id: str, customer_id: str) -> Customer:
    try:
        return Customer.get(tenant_id, customer_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("customer_not_found", "No such customer in this business.") from None


def create_customer(tenant_id: str, body: CustomerCreate) -> CustomerOut:
    c = Customer(tenant_id, uuid.uuid4().hex, name=body.name, emails=_dedupe(body.emails), phones=body.phones,
                 billing_address=body.billing_address)
    return customer_out(_write(c, tenant_id, f"customer:{c.customer_id}", [], c.emails,
                               phones=([], list(c.phones or [])), names=([], [c.name])))


def list_customers(tenant_id: str, query: dict) -> dict:
    return _page(Customer, tenant_id, "customer_id", query, customer_out)


def patch_customer(tenant_id: str, customer_id: str, body: CustomerPatch) -> tuple[CustomerOut, set[str]]:
    """The customer as changed, and the emails taken off it (invitations.patch_customer acts on those)."""
    c = get_customer(tenant_id, customer_id)
    old, old_phones, old_name = list(c.emails or []), list(c.phones or []), c.name
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise Invalid("invalid_request", "name cannot be empty.", field="name")
    for key, value in changes.items():
        if key in ("emails", "phones") and value is None:  # null clears a list (DynamoDB holds no null list)
            value = []
        setattr(c, key, _dedupe(value) if key == "emails" else value)
    c.updated_at = now()
    new = list(c.emails or [])
    written = _write(c, tenant_id, f"customer:{customer_id}", old, new, phones=(old_phones, list(c.phones or [])),
                     names=([old_name], [c.name]))
    return customer_out(written), set(old) - set(new)


# --- locations ----------------------------------------------------------------------------------------------

def location_out(loc: Location) -> LocationOut:
    return LocationOut(location_id=loc.location_id, customer_id=loc.customer_id, name=loc.name,
                       address=loc.address, emails=list(loc.emails or []), created_at=iso_at(loc.created_at),
                       updated_at=iso_at(loc.updated_at))


def _location_ref(loc: Location) -> str:
    return f"location:{loc.location_id}:{loc.customer_id}"


def get_location(tenant_id: str, location_id: str) -> Location:
    try:
        return Location.get(tenant_id, location_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("location_not_found", "No such location in this business.") from None


def create_location(tenant_id: str, customer_id: str, body: LocationCreate) -> LocationOut:
    get_customer(tenant_id, customer_id)
    loc = Location(tenant_id, uuid.uuid4().hex, customer_id=customer_id, customer_key=f"{tenant_id}#{customer_id}",
                   name=body.name, address=body.address, emails=_dedupe(body.emails))
    return location_out(_write(loc, tenant_id, _location_ref(loc), [], loc.emails))


def list_locations(tenant_id: str, customer_id: str, query: dict) -> dict:
    get_customer(tenant_id, customer_id)
    return _by_customer(Location, tenant_id, customer_id, "location_id", query, location_out)


def patch_location(tenant_id: str, location_id: str, body: LocationPatch) -> tuple[LocationOut, set[str]]:
    loc = get_location(tenant_id, location_id)
    old = list(loc.emails or [])
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key == "address":
            raise Invalid("invalid_request", "address cannot be empty.", field="address")
        if key == "emails":  # null clears the list (DynamoDB holds no null list)
            value = _dedupe(value or [])
        setattr(loc, key, value)
    loc.updated_at = now()
    new = list(loc.emails or [])
    return location_out(_write(loc, tenant_id, _location_ref(loc), old, new)), set(old) - set(new)


# --- contacts -----------------------------------------------------------------------------------------------

def contact_out(c: Contact) -> ContactOut:
    return ContactOut(contact_id=c.contact_id, customer_id=c.customer_id, name=c.name, email=c.email,
                      phone=c.phone, created_at=iso_at(c.created_at), updated_at=iso_at(c.updated_at))


def _contact_ref(c: Contact) -> str:
    return f"contact:{c.contact_id}:{c.customer_id}"


def get_contact(tenant_id: str, contact_id: str) -> Contact:
    try:
        return Contact.get(tenant_id, contact_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("contact_not_found", "No such contact in this business.") from None


def create_contact(tenant_id: str, customer_id: str, body: ContactCreate) -> Contact:
    get_customer(tenant_id, customer_id)
    c = Contact(tenant_id, uuid.uuid4().hex, customer_id=customer_id, customer_key=f"{tenant_id}#{customer_id}",
                name=body.name, email=body.email, phone=body.phone)
    return _write(c, tenant_id, _contact_ref(c), [], [c.email] if c.email else [],
                  phones=([], [c.phone] if c.phone else []))


def list_contacts(tenant_id: str, customer_id: str, query: dict) -> dict:
    get_customer(tenant_id, customer_id)
    return _by_customer(Contact, tenant_id, customer_id, "contact_id", query, contact_out)


def patch_contact(tenant_id: str, contact_id: str, body: ContactPatch) -> tuple[ContactOut, set[str]]:
    c = get_contact(tenant_id, contact_id)
    old = [c.email] if c.email else []
    old_phones = [c.phone] if c.phone else []
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key == "name":
            raise Invalid("invalid_request", "name cannot be empty.", field="name")
        setattr(c, key, value)
    c.updated_at = now()
    new = [c.email] if c.email else []
    written = _write(c, tenant_id, _contact_ref(c), old, new, phones=(old_phones, [c.phone] if c.phone else []))
    return contact_out(written), set(old) - set(new)


def _by_customer(model, tenant_id: str, customer_id: str, range_attr: str, query: dict, out) -> dict:
    limit, start = page_args(query)
    key = f"{tenant_id}#{customer_id}"
    start_key = None
    if start:
        start_key = {"customer_key": {"S": key}, range_attr: {"S": start}, "tenant_id": {"S": tenant_id}}
    results = model.by_customer.query(key, limit=limit, last_evaluated_key=start_key)
    return {"items": [out(item) for item in results], "next_cursor": make_cursor(results.last_evaluated_key,
                                                                                 range_attr)}


def records_for_email(tenant_id: str, email: str) -> set[str]:
    try:
        return set(RecordEmail.get(tenant_id, email, consistent_read=True).refs or ())
    except DoesNotExist:
        return set()
