"""A customer's secure access link in the console (directory:manage for the section, and portal:manage, as the
API's /v1/customers/{id}/access-link routes need): its state, and Create link / Replace link, which calls
access_links.rotate. The new link is shown once, in the answer to that POST (never in an address, a cookie or a
log), in a read-only field with a Copy button (pages.js); without JavaScript the field is selected by hand."""
import re

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.api import status_of
from chalicelib.web.console.customers import DIRECTORY, PORTAL, customer_or_404, not_found, portal_users
from chalicelib.web.console.shell import Console, console_page, forbidden


@console_page("/console/customers/{customer_id}/access-link", DIRECTORY)
def access_link(c: Console, customer_id: str) -> Response:
    """The customer's secure access link: its state; create or replace it (the new link is shown once)."""
    from chalicelib.flows.portal import access_links
    if not c.can(PORTAL):
        return forbidden(c.page, c.principal, c.tenant_name)
    record = customer_or_404(c, customer_id)
    if record is None:
        return not_found(c)
    days, problem, made, status = c.form.get("expires_in_days", "").strip(), None, None, 200
    if c.posted():
        if not re.fullmatch(r"[0-9]{1,3}", days) or not 1 <= int(days) <= access_links.MAX_DAYS:
            problem, status = f"Enter a number of days from 1 to {access_links.MAX_DAYS}.", 400
        else:
            try:
                made = access_links.rotate(c.tenant_id, customer_id, access_links.LinkOptions(expires_in_days=int(days)),
                                           c.principal.subject, c.ip)
            except Error as err:
                problem, status = err.message, status_of(err)
            record = customer_or_404(c, customer_id) or record
    users = portal_users(c.tenant_id, list(record.emails or []))
    has_portal_users = any(u.status in ("invited", "active") and customer_id in (u.customer_ids or ())
                           for u in users.values())
    return c.html("console/customer-access-link.html", status=status, title=f"Secure access link: {record.name}",
                  customer=record, link=access_links.state(record), made=made, link_error=problem,
                  days=days if problem else access_links.DEFAULT_DAYS, has_portal_users=has_portal_users,
                  link_csrf=c.csrf())
