"""PynamoDB models, one per table of infra/template.json. Every tenant-owned table has `tenant_id` as its
hash key, so a query can only ever read one tenant's data: the tenant always comes from the caller's token.

Times are epoch seconds (numbers); expiry is always checked in code (`expires_at < now`) because DynamoDB TTL
deletes late (and moto never does)."""
from chalicelib.core.models.apps import App, AppDefault, AppsByTenant
from chalicelib.core.models.audit import AuditByActor, AuditByTarget, AuditEvent
from chalicelib.core.models.base import (
    _transaction_connection,
    connect,
    now,
    now_ms,
    string_list,
    table_meta,
    transaction,
)
from chalicelib.core.models.counters import Counter
from chalicelib.core.models.directory import (
              ByCustomer,
              Contact,
              ContactsByCustomer,
              Customer,
              Location,
              LocationsByCustomer,
              RecordEmail,
)
from chalicelib.core.models.jobs import Job
from chalicelib.core.models.partners import PartnerClient, PartnerEnablement, PartnerPortal, PartnerUser
from chalicelib.core.models.people import Claim, DueIndex, Person
from chalicelib.core.models.portal_users import Grant, PortalUser, StatusIndex
from chalicelib.core.models.send_backlog import ACTIVE_LINE, BacklogItem
from chalicelib.core.models.sessions import Session, SessionsByUser
from chalicelib.core.models.tenants import Tenant
from chalicelib.core.models.tokens import Token

ALL_MODELS = (Tenant, Person, Claim, Customer, Location, Contact, RecordEmail, PortalUser, Session, Token, Job,
              AuditEvent, Counter, App)

__all__ = [
    "ACTIVE_LINE", "ALL_MODELS", "App", "AppDefault", "AppsByTenant", "AuditByActor", "AuditByTarget", "AuditEvent", "BacklogItem", "ByCustomer", "Claim", "Contact",
    "ContactsByCustomer", "Counter", "Customer", "DueIndex", "Grant", "Job", "Location", "LocationsByCustomer",
    "PartnerClient", "PartnerEnablement", "PartnerPortal", "PartnerUser", "Person", "PortalUser", "RecordEmail",
    "Session", "SessionsByUser", "StatusIndex", "Tenant", "Token", "_transaction_connection", "connect", "now", "now_ms",
    "string_list", "table_meta", "transaction",
]
