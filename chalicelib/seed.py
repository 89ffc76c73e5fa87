"""The local stack's demo tenant: `demo`, its admin `admin@demo.example`, three customers with locations and
emails. Refuses to run outside the local stage: demo credentials never reach a real deployment."""
from pynamodb.exceptions import DoesNotExist

from chalicelib import config, directory, people
from chalicelib.models import Tenant
from chalicelib.security import passwords

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
