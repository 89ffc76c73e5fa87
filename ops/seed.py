"""The local stack's demo tenant: `demo`, its admin `admin@demo.example`, three customers with locations and
emails. Refuses to run outside the local stage: demo credentials never reach a real deployment."""
from pynamodb.exceptions import DoesNotExist

from chalicelib.core import config
from chalicelib.core.models import Tenant
from chalicelib.core.security import passwords
from chalicelib.flows import directory
from chalicelib.flows.staff import people

DEMO_TENANT = "demo"
DEMO_ADMIN = "admin@demo.example"
DEMO_CUSTOMERS = [
    ("Harper Household", ["jamie.harper@example.com"], "12 Elm Street, Springfield", ["tenant.elm@example.com"]),
    ("Oakridge Property Management", ["billing@oakridge.example", "pm@oakridge.example"],
     "400 Oak Ridge Blvd, Unit 3", ["unit3@oakridge.example"]),
    ("Nguyen Family", ["linh.nguyen@example.com"], "77 Lakeview Drive", []),
]


def seed_demo(admin_password: str) -> dict:
    if not config.is_local():
        raise SystemExit(f"refusing to seed demo credentials in stage {config.stage()!r}: only 'local' is allowed")
    passwords.check_policy(admin_password)
    try:
        Tenant.get(DEMO_TENANT)
        return {"tenant_id": DEMO_TENANT, "admin_username": DEMO_ADMIN, "customers": [], "created": False}
    except DoesNotExist:
        pass
    Tenant(DEMO_TENANT, name="Demo Plumbing & Heating", self_signup=True).save(
        condition=Tenant.tenant_id.does_not_exist())
    people.create(DEMO_TENANT, kind="employee", name="Demo Admin", email=DEMO_ADMIN, role="admin",
                  username=DEMO_ADMIN, password_hash=passwords.hash_password(admin_password))
    customers = []
    for name, emails, address, location_emails in DEMO_CUSTOMERS:
        customer = directory.create_customer(DEMO_TENANT, directory.CustomerCreate(name=name, emails=emails))
        directory.create_location(DEMO_TENANT, customer.customer_id,
                                  directory.LocationCreate(address=address, emails=location_emails))
        customers.append({"customer_id": customer.customer_id, "name": name, "emails": emails})
    return {"tenant_id": DEMO_TENANT, "admin_username": DEMO_ADMIN, "customers": customers, "created": True}


# --- partner portals (issue 6): what a tenant admin can enable, and a partner to call the API with ---------------

DEMO_PARTNER_CLIENT = "demo-partner"
DEMO_PORTALS = [  # portal id, name, client id, permissions
    ("blue-collar-coach", "Blue Collar Coach", DEMO_PARTNER_CLIENT,
     ["view_alerts", "view_customer", "view_customer_statement", "view_location", "view_estimate", "access_settings"]),
    ("allhours-call-centre", "AllHours Call Centre", "demo-call-centre",
     ["view_customer", "view_location", "view_job", "book_job"]),
]
DEMO_AGREEMENT = """Partner Access Agreement (demo, version 2024-01)

1. The partner sees the business's data only as far as the portal's permissions allow, and only while the
   business keeps the portal enabled.
2. The partner keeps that data confidential and uses it only to serve the business.
3. The business may disable the portal at any time; access ends at once.
"""


def seed_partner_portals(secret: str | None) -> dict:
    """Blue Collar Coach (client `demo-partner`, with `secret`, else a generated one that is returned so the stack
    can print it) and a call centre with other permissions. Idempotent; local stage only, like seed_demo."""
    from chalicelib.core.models import PartnerPortal
    from ops import partner_portals
    if not config.is_local():
        raise SystemExit(f"refusing to seed partner credentials in stage {config.stage()!r}: only 'local' is allowed")
    out = {"portal_id": DEMO_PORTALS[0][0], "client_id": DEMO_PARTNER_CLIENT, "secret": None, "created": False}
    for portal_id, name, client_id, permissions in DEMO_PORTALS:
        try:
            PartnerPortal.get(portal_id)
            continue
        except DoesNotExist:
            pass
        demo_partner = client_id == DEMO_PARTNER_CLIENT
        try:  # the call centre's secret is thrown away: `portal-access partner-portal rotate-secret` makes one
            _, made = partner_portals.create_portal(name, permissions, "2024-01", DEMO_AGREEMENT, portal_id=portal_id,
                                             client_id=client_id, secret=secret if demo_partner else None)
        except partner_portals.OperatorError as exc:
            raise SystemExit(f"PORTAL_DEMO_PARTNER_SECRET: {exc}") from None
        if demo_partner:
            out.update(created=True, secret=None if secret else made)
    return out



# --- apps (issue 17): one of each audience, so the OpenID Provider can be tried at once ----------------------------

DEMO_APPS = [  # name, audience, redirect URIs, post-logout redirect URIs, initiate login URI
    ("Customer Portal", "portal", ["http://127.0.0.1:8400/callback"], ["http://127.0.0.1:8400/"],
     "http://127.0.0.1:8400/"),
    ("Technician App", "staff", ["com.example.fieldtech:/oauth2redirect"], [], None),
]


def seed_apps() -> dict:
    """The demo tenant's two public apps, found by name and audience when they exist (idempotent); returns
    {audience: client_id}. Local stage only, like seed_demo."""
    from chalicelib.core.models import App
    from chalicelib.flows import apps
    if not config.is_local():
        raise SystemExit(f"refusing to seed demo apps in stage {config.stage()!r}: only 'local' is allowed")
    existing = {(a.name, a.audience): a.client_id for a in App.by_tenant.query(DEMO_TENANT)}
    out = {}
    for name, audience, redirect_uris, post_logout, initiate in DEMO_APPS:
        client_id = existing.get((name, audience))
        if client_id is None:
            client_id = apps.create(DEMO_TENANT, apps.AppCreate.model_validate({
                "name": name, "audience": audience, "client_type": "public", "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout, "initiate_login_uri": initiate}), "operator", None).client_id
        out[audience] = client_id
    return out
