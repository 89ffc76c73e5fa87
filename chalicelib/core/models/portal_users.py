"""Customer portal users and their grants per customer record."""

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.models.base import now, table_meta


class Grant(MapAttribute):
    customer_id = UnicodeAttribute()
    access = UnicodeAttribute()  # billing | non_billing | none
    contact_id = UnicodeAttribute(null=True)  # limited to one contact (rule 7)
    admin = BooleanAttribute(default=False)


class StatusIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-status"
        projection = AllProjection()
    status_key = UnicodeAttribute(hash_key=True)  # "<tenant_id>#<status>"
    user_id = UnicodeAttribute(range_key=True)


class PortalUser(Model):
    """A customer portal user: one per email per tenant, holding grants on several customer records. The id is
    derived from the email (portal_user_id), so the item itself is the uniqueness of the email and a bulk run
    finds 100 users per BatchGetItem without a lookup table."""
    Meta = table_meta("portal-users")
    tenant_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    email = UnicodeAttribute()
    status = UnicodeAttribute(default="invited")  # invited | active | disabled
    status_key = UnicodeAttribute()
    by_status = StatusIndex()
    grants = ListAttribute(of=Grant, default=list)
    customer_ids = UnicodeSetAttribute(default=set)  # the grants' customers, for filtering the list
    password_hash = UnicodeAttribute(null=True)
    password_set_at = NumberAttribute(null=True)
    invitation_token_hash = UnicodeAttribute(null=True)
    invitation_expires_at = NumberAttribute(null=True)
    reset_link_token_hash = UnicodeAttribute(null=True)  # the one live reset link (a newer one or a reset ends it)
    invite_job = UnicodeAttribute(null=True)  # the run (bulk job or single invitation) that last invited
    last_sent_at = NumberAttribute(null=True)
    delivery_problem = UnicodeAttribute(null=True)  # bouncing | complained
    session_epoch = NumberAttribute(null=True)  # see Person.session_epoch
    linked_identities = UnicodeSetAttribute(null=True)  # "google:<sub>", "microsoft:<sub>"
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()
