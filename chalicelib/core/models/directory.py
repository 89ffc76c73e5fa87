"""The directory: customers, locations, contacts, and the email index behind rule 2."""

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.models.base import now, string_list, table_meta


class Customer(Model):
    Meta = table_meta("customers")
    tenant_id = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    emails = string_list(default=list)
    phones = string_list(default=list)
    billing_address = UnicodeAttribute(null=True)
    access_link_hash = UnicodeAttribute(null=True)  # rule 6: the customer's secure access link (hashed)
    access_link_created_at = NumberAttribute(null=True)
    access_link_expires_at = NumberAttribute(null=True)  # set by the business (1-365 days), renewable
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class ByCustomer(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-customer"
        projection = AllProjection()
    customer_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<customer_id>"


class LocationsByCustomer(ByCustomer):
    location_id = UnicodeAttribute(range_key=True)


class ContactsByCustomer(ByCustomer):
    contact_id = UnicodeAttribute(range_key=True)


class Location(Model):
    Meta = table_meta("locations")
    tenant_id = UnicodeAttribute(hash_key=True)
    location_id = UnicodeAttribute(range_key=True)
    customer_id = UnicodeAttribute()
    customer_key = UnicodeAttribute()
    by_customer = LocationsByCustomer()
    name = UnicodeAttribute(null=True)
    address = UnicodeAttribute()
    emails = string_list(default=list)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class Contact(Model):
    Meta = table_meta("contacts")
    tenant_id = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute(range_key=True)
    customer_id = UnicodeAttribute()
    customer_key = UnicodeAttribute()
    by_customer = ContactsByCustomer()
    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class RecordEmail(Model):
    """Which customer, location and contact records carry an email (DESIGN rule 2), keyed by the email so a
    bulk run can look up 100 emails per BatchGetItem. refs: `customer:<id>`, `location:<id>:<customer_id>`,
    `contact:<id>:<customer_id>`."""
    Meta = table_meta("record-emails")
    tenant_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    refs = UnicodeSetAttribute(default=set)
