"""Partner portals: what a business's admins enable (partners:manage) and what a partner's token reaches."""
from chalice import Blueprint

from chalicelib.core import observability
from chalicelib.web.api import PAGING, Admin, Api, Partner, Public
from chalicelib.web.lazy import lazy

audit = lazy("chalicelib.core.audit")
directory = lazy("chalicelib.flows.directory")
partners = lazy("chalicelib.flows.partners")

routes = Blueprint(__name__)
api = Api(routes)


# Tenant admins see and enable portals; partners call /v1/partner/* with a partner token. Partner(permission)
# re-checks the enablement and the permission on every call (partners.check_access), so handlers stay one line.


PARTNERS_ADMIN = Admin("partners:manage")


@api.route("/v1/partner-portals", "GET", PARTNERS_ADMIN, response=partners.shape("PartnerPortalList"))
def list_partner_portals(call):
    """Every partner portal with its permissions and whether this business enabled it."""
    return partners.list_for_tenant(call.tenant_id)


@api.route("/v1/partner-portals/{portal_id}", "GET", PARTNERS_ADMIN, response=partners.shape("PartnerPortalOut"))
def get_partner_portal(call, portal_id):
    """One partner portal: permissions (enabled or not) and the acceptance on record."""
    return partners.get_for_tenant(call.tenant_id, portal_id)


@api.route("/v1/partner-portals/{portal_id}/agreement", "GET", PARTNERS_ADMIN,
           response=partners.shape("PartnerAgreement"))
def get_partner_agreement(call, portal_id):
    """The current legal agreement of a portal: version and text."""
    return partners.agreement(portal_id)


@api.route("/v1/partner-portals/{portal_id}/enable", "POST", PARTNERS_ADMIN, body=partners.shape("EnableBody"),
           response=partners.shape("PartnerPortalOut"))
def enable_partner_portal(call, portal_id):
    """Enable a portal by accepting the current version of its agreement (who, when, IP are recorded)."""
    return partners.enable(call.tenant_id, portal_id, call.body, call.actor, call.ip, call.user_agent)


@api.route("/v1/partner-portals/{portal_id}/disable", "POST", PARTNERS_ADMIN,
           response=partners.shape("PartnerPortalOut"))
def disable_partner_portal(call, portal_id):
    """Disable a portal: the partner's next call for this business fails."""
    return partners.disable(call.tenant_id, portal_id, call.actor, call.ip)


@api.route("/v1/partner-portals/{portal_id}/users", "GET", PARTNERS_ADMIN, response=partners.shape("PartnerUserPage"),
           query={**PAGING, "include_inactive": "true to list inactive users too"})
def list_partner_users(call, portal_id):
    """The portal's users, active only unless include_inactive=true."""
    return partners.list_users(portal_id, call.query)


@api.route("/v1/partner-portals/{portal_id}/audit", "GET", PARTNERS_ADMIN, response=audit.shape("AuditPage"),
           query=PAGING)
def partner_portal_audit(call, portal_id):
    """Enables, disables, tokens and every partner call for this business, newest first."""
    return partners.portal_audit(call.tenant_id, portal_id, call.query)


@api.route("/v1/partner/token", "POST", Public(), body=partners.shape("PartnerTokenRequest"),
           response=partners.shape("PartnerToken"))
def partner_token(call):
    """Partner credentials + a business that enabled the portal → a 10-minute partner token."""
    return observability.sign_in_outcome("partner", lambda: partners.issue_token(call.body, call.ip))


@api.route("/v1/partner/permissions", "GET", Partner(), response=partners.shape("PartnerScope"))
def partner_permissions(call):
    """What this partner token may do for its business."""
    return partners.scope(call.principal)


@api.route("/v1/partner/customers", "GET", Partner("view_customer"), response=directory.shape("CustomerPage"),
           query=PAGING)
def partner_customers(call):
    """The business's customers (permission View Customer)."""
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/partner/customers/{customer_id}", "GET", Partner("view_customer"),
           response=directory.shape("CustomerOut"))
def partner_customer(call, customer_id):
    """One customer of the business (permission View Customer)."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/partner/locations", "GET", Partner("view_location"), response=partners.shape("PartnerLocationPage"),
           query={**PAGING, "customer_id": "only this customer's locations"})
def partner_locations(call):
    """The business's service locations (permission View Location)."""
    return partners.list_locations(call.tenant_id, call.query)
