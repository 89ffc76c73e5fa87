"""SES bounces and complaints (via the configuration set's SNS topic): the recipients' portal users are marked,
so bulk runs skip them and admins see why an invitation did not arrive."""
from pynamodb.exceptions import UpdateError

from chalicelib.core import identity
from chalicelib.core.models import PortalUser
from chalicelib.flows.portal.invitations import portal_user_id


def record_delivery_problem(notification: dict) -> int:
    """An SES event (via the configuration set's SNS topic): mark bouncing/complaining recipients so that bulk
    runs skip them and admins see why the invitation did not arrive."""
    kind = notification.get("eventType") or notification.get("notificationType")
    mail = notification.get("mail") or {}
    tenant_ids = (mail.get("tags") or {}).get("tenant") or []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return 0  # a full mailbox clears up by itself; only hard bounces stop sending
        recipients, problem = [r.get("emailAddress", "") for r in bounce.get("bouncedRecipients", [])], "bouncing"
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        recipients = [r.get("emailAddress", "") for r in complaint.get("complainedRecipients", [])]
        problem = "complained"
    else:
        return 0
    marked = 0
    for tenant_id in tenant_ids:
        for address in recipients:
            email = identity.email_key(address)
            try:
                PortalUser(tenant_id, portal_user_id(email)).update(
                    actions=[PortalUser.delivery_problem.set(problem)], condition=PortalUser.user_id.exists(),
                    add_version_condition=False)
                marked += 1
            except UpdateError:
                continue
    return marked
