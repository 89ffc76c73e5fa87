"""The apps a business registers with its OpenID Provider (issue 17): the customer-portal web app, the technicians'
mobile app. The provider (flows/oauth) reads them by client_id alone, so the table's key is the client_id (random,
globally unique) and the tenant is an attribute; a tenant's apps are listed through the by-tenant index."""

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.models.base import now, string_list, table_meta


class AppsByTenant(GlobalSecondaryIndex):
    """One business's apps, in client_id order."""
    class Meta:
        index_name = "by-tenant"
        projection = AllProjection()
    tenant_id = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute(range_key=True)


class App(Model):
    Meta = table_meta("apps")
    client_id = UnicodeAttribute(hash_key=True)  # "app_" + 22 URL-safe characters (flows/apps.py)
    tenant_id = UnicodeAttribute()
    by_tenant = AppsByTenant()
    name = UnicodeAttribute()
    audience = UnicodeAttribute()  # portal (customer portal users) | staff (employees and technicians)
    client_type = UnicodeAttribute()  # public (PKCE, no secret) | confidential (a client secret)
    redirect_uris = string_list(default=list)  # exact strings, compared as they are
    post_logout_redirect_uris = string_list(default=list)
    # OpenID Connect's third-party-initiated login URI: where "Continue to <app name>" sends a person
    initiate_login_uri = UnicodeAttribute(null=True)
    # SHA-256 hex of the client secret (confidential apps only). The secret is 256 random bits, not something a
    # person chose: nobody can guess it or search a dictionary for it, so a fast hash is enough (a slow one such as
    # argon2 protects low-entropy passwords and would only cost time on every token request).
    secret_hash = UnicodeAttribute(null=True)
    is_default = BooleanAttribute(default=False)  # the tenant's default app of its audience (one per audience)
    created_at = NumberAttribute(default=now)
    updated_at = NumberAttribute(default=now)


class AppDefault(Model):
    """Which app is a tenant's default of one audience, and how many apps it has of that audience: one item per
    (tenant, audience) in the same table, keyed "default#<tenant_id>#<audience>" (no client_id has that shape and
    the item has no tenant_id, so it is in no listing). Every create, delete and "make default" writes it in the
    same transaction as the apps, with a condition on what was read, so concurrent changes can never leave two
    defaults, or none while the audience has apps."""
    Meta = table_meta("apps")
    key = UnicodeAttribute(hash_key=True, attr_name="client_id")
    default_client_id = UnicodeAttribute()
    apps = NumberAttribute(default=0)

    @staticmethod
    def key_of(tenant_id: str, audience: str) -> str:
        return f"default#{tenant_id}#{audience}"
