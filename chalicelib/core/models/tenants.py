"""A business: its name, status and portal settings."""

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import now, string_list, table_meta


class Tenant(Model):
    Meta = table_meta("tenants")
    tenant_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | disabled
    self_signup = BooleanAttribute(default=False)
    third_party_signin = string_list(default=list)
    # Bumped in the same transaction as every change that takes away an admin, so two admins cannot each
    # remove the other at once and leave the business with none (staff_accounts.patch_person).
    admin_changes = NumberAttribute(default=0)
    # Who must have a second factor (flows/staff/mfa.py): off | optional (when unset) | required_for_admins |
    # required_for_all.
    staff_mfa = UnicodeAttribute(null=True)
    created_at = NumberAttribute(default=now)
