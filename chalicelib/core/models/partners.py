"""Partner portals (DESIGN rules 18-21)."""

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import now, string_list, table_meta

# --- partner portals (DESIGN rules 18-21) ---------------------------------------------------------------------
# Portals are defined by operators (the console), not by a tenant, so their tables are keyed by portal; what a
# tenant decides about a portal (enable, disable, the agreement it accepted) lives in PartnerEnablement.

class PartnerPortal(Model):
    Meta = table_meta("partner-portals")
    portal_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    permissions = string_list(default=list)  # keys of partners.PERMISSIONS
    client_id = UnicodeAttribute()
    agreement_version = UnicodeAttribute()
    agreement_text = UnicodeAttribute()
    secret_rotated_at = NumberAttribute(null=True)  # partner tokens issued before this stop working
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerClient(Model):
    """A portal's API credentials: the secret only as its argon2id hash."""
    Meta = table_meta("partner-clients")
    client_id = UnicodeAttribute(hash_key=True)
    portal_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    rotated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerEnablement(Model):
    """One tenant's decision about one portal. The acceptance fields describe the last enable; the version
    attribute turns every enable/disable into a conditional write, so concurrent toggles never lose one."""
    Meta = table_meta("partner-enablements")
    tenant_id = UnicodeAttribute(hash_key=True)
    portal_id = UnicodeAttribute(range_key=True)
    enabled = BooleanAttribute(default=False)
    accepted_by = UnicodeAttribute(null=True)  # person_id of the admin
    accepted_by_email = UnicodeAttribute(null=True)  # their email then (the person may change it later)
    accepted_at = NumberAttribute(null=True)
    agreement_version = UnicodeAttribute(null=True)
    agreement_sha256 = UnicodeAttribute(null=True)  # proves which text that version had
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    disabled_by = UnicodeAttribute(null=True)
    disabled_at = NumberAttribute(null=True)
    # Partner tokens carry the generation they were issued in; each disable starts a new one, so a token issued
    # before a disable never works again, even after the portal is enabled again.
    generation = NumberAttribute(default=0)
    updated_at = NumberAttribute(default=now)
    version = VersionAttribute()


class PartnerUser(Model):
    """A person at the partner (coach, call-centre agent) who works in the portal."""
    Meta = table_meta("partner-users")
    portal_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | inactive
    created_at = NumberAttribute(default=now)
