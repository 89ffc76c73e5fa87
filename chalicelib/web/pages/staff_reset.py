"""/staff/reset-password: identifier → email or SMS → the code → a new password (or straight to the new password
from a reset link an administrator sent). Where the person is in the flow is one path-scoped cookie:
flow.<stage>.<channel>.<flow id> while the code is asked for, then reset.<reset token>."""
from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import NEW_PASSWORD_REQUIRED, Errors
from chalicelib.web.pages.links import LinkHelp, same_passwords, submit, tenant, tenant_name, token_tenant
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page
from chalicelib.web.pages.staff import STAFF
from chalicelib.web.pages.staff_signin import after_new_password

pynamodb_exceptions = lazy("pynamodb.exceptions")

STATE = "pa_staff_reset"  # flow.<stage>.<channel>.<flow id> | reset.<reset token>
STAFF_RESET_HELP = LinkHelp(STAFF, ("Start again to get a new code, or ask your administrator for a new reset link.",),
                            action=("Start again", "/staff/reset-password"),
                            by_code={"link_missing": ("To reset your password, choose \"Forgot password?\" where you "
                                                      "sign in, or open the reset link your administrator sent you.",)})


def staff_reset_password(p: Page) -> Response:
    from chalicelib.core import single_use
    from chalicelib.flows.staff import staff_recovery
    if "token" in p.query:  # an admin-sent reset link: straight to the new password
        token = p.query["token"]
        try:
            single_use.look_up(token, staff_recovery.RESET_KIND)
        except Error as err:
            return STAFF_RESET_HELP.page(p, err.code, token_tenant(token))
        p.keep(STATE, f"reset.{token}", staff_recovery.RESET_TOKEN_SECONDS)
        return p.redirect(p.self_url())
    if "tenant_id" in p.query:  # "Forgot password?" from an app: a fresh start for that business
        if p.method == "GET" and p.state(STATE):
            p.clear_cookie(STATE)
        return _start(p, p.query["tenant_id"])
    state = p.state(STATE) or ""
    kind, _, rest = state.partition(".")
    if kind == "reset":
        return _new_password(p, rest)
    if kind == "flow":
        stage, channel, flow_id = (rest.split(".", 2) + ["", "", ""])[:3]
        try:
            flow = single_use.look_up(flow_id, staff_recovery.FLOW_KIND, expired_code="flow_expired")
        except Error as err:
            return _ended(p, err.code, token_tenant(flow_id))
        if flow.attempts >= staff_recovery.MAX_ATTEMPTS:
            return _ended(p, "flow_dead", flow.tenant_id)
        if stage == "code":
            return _code(p, flow, flow_id, channel)
        return _channel(p, flow, flow_id, channel)
    return STAFF_RESET_HELP.page(p, "link_missing", None)


def _ended(p: Page, code: str, tenant_id: str | None) -> Response:
    """The reset cannot go on (STAFF_RESET_HELP says why and what next): its cookie goes."""
    p.clear_cookie(STATE)
    return STAFF_RESET_HELP.page(p, code, tenant_id)


def _start(p: Page, tenant_id: str) -> Response:
    from chalicelib.flows.staff import staff_recovery
    business = tenant(tenant_id)
    if business is None:
        return STAFF_RESET_HELP.page(p, "link_missing", None)
    errors = Errors()
    identifier = p.form.get("identifier", "").strip()

    def started(answer: dict) -> Response:
        p.keep(STATE, f"flow.channel.{suggested_channel(identifier)}.{answer['flow_id']}",
               staff_recovery.FLOW_SECONDS)
        return p.redirect(p.self_url())

    answer = submit(p, errors, step="start", required={"identifier": "Enter your username, email address or mobile number."},
                    flow=lambda: staff_recovery.start(staff_recovery.ResetStart(tenant_id=business.tenant_id,
                                                                                identifier=identifier), p.ip),
                    fields={"identifier": "identifier", "tenant_id": "identifier"}, done=started)
    if answer:
        return answer
    return p.form_page("pages/staff/reset-start.html", tenant_name=business.name, section=STAFF,
                       title="Forgot your password?", button="Continue", errors=errors, step="start",
                       action=url("/staff/reset-password", tenant_id=business.tenant_id), identifier=identifier)


def suggested_channel(identifier: str) -> str:
    """The channel the next step preselects, from what the person typed only: a mobile number → SMS, anything
    else → email (what send-code does by default; the code goes to the other one when the account has only
    that). Never from the account: a step that differed for a known identifier would tell it from an unknown one."""
    from chalicelib.core import identity
    if "@" not in identifier:
        try:
            identity.normalise_mobile(identifier)
            return "sms"
        except ValueError:
            pass
    return "email"


def _channel(p: Page, flow, flow_id: str, suggested: str = "") -> Response:
    from chalicelib.flows.staff import staff_recovery
    errors = Errors()
    channel = p.form.get("channel", "") if p.method == "POST" else suggested

    def known_channel(found: Errors) -> None:
        if channel not in ("email", "sms"):
            found.add("channel", "Choose where to send the code.")

    def sent(_) -> Response:
        p.keep(STATE, f"flow.code.{channel}.{flow_id}", staff_recovery.FLOW_SECONDS)
        return p.redirect(p.self_url())

    answer = submit(p, errors, step="send", required={}, check=known_channel, fields={"channel": "channel"},
                    flow=lambda: staff_recovery.send_code(staff_recovery.SendCode.model_validate(
                        {"flow_id": flow_id, "channel": channel}), p.ip),
                    problem=lambda code: _ended(p, code, flow.tenant_id), done=sent)
    if answer:
        return answer
    return p.form_page("pages/staff/reset-channel.html", tenant_name=tenant_name(flow.tenant_id), section=STAFF,
                       title="Verify your account", button="Send the code", errors=errors, step="send",
                       channel=channel, tenant_id=flow.tenant_id)


def _code(p: Page, flow, flow_id: str, channel: str) -> Response:
    from chalicelib.flows.staff import staff_recovery
    errors = Errors()
    notice = None

    def resent(_) -> None:
        nonlocal notice
        notice = "We sent a new code. The previous code no longer works."

    def verified(answer: dict) -> Response:
        p.keep(STATE, f"reset.{answer['reset_token']}", staff_recovery.RESET_TOKEN_SECONDS)
        return p.redirect(p.self_url())

    answer = (submit(p, errors, step="resend", required={}, fields={}, done=resent,
                     flow=lambda: staff_recovery.send_code(staff_recovery.SendCode.model_validate(
                         {"flow_id": flow_id, "channel": channel or None}), p.ip),
                     problem=lambda code: _ended(p, code, flow.tenant_id))
              or submit(p, errors, step="verify", required={"code": "Enter the code we sent you."},
                        fields={"code": "code"}, done=verified,
                        flow=lambda: staff_recovery.verify(staff_recovery.VerifyCode(flow_id=flow_id,
                                                                                     code=p.form["code"]), p.ip),
                        problem=lambda code: _ended(p, code, flow.tenant_id)))
    if answer:
        return answer
    where = {"email": "to its email address (or its mobile number, if it has no email address)",
             "sms": "to its mobile number (or its email address, if it has no mobile number)"}.get(channel, "")
    return p.form_page("pages/staff/reset-code.html", tenant_name=tenant_name(flow.tenant_id), section=STAFF,
                       title="Enter the code", button="Check the code", errors=errors, step="verify",
                       code_length=staff_recovery.CODE_LENGTH, where=where,
                       minutes=staff_recovery.CODE_SECONDS // 60, notice=notice, tenant_id=flow.tenant_id)


def _new_password(p: Page, reset_token: str) -> Response:
    from chalicelib.core import single_use
    from chalicelib.flows.staff import staff_recovery
    try:
        record = single_use.look_up(reset_token, staff_recovery.RESET_KIND)
    except Error as err:
        return _ended(p, err.code, token_tenant(reset_token))
    business = tenant_name(record.tenant_id)
    errors = Errors()
    password = p.form.get("new_password", "")
    answer = submit(
        p, errors, required=NEW_PASSWORD_REQUIRED, check=same_passwords(p, "new_password", "new_password_confirm"),
        flow=lambda: staff_recovery.complete(staff_recovery.CompleteReset(reset_token=reset_token,
                                                                          new_password=password), p.ip),
        fields={"new_password": "new_password"}, password=password, cookie=STATE,
        problem=lambda code: STAFF_RESET_HELP.page(p, code, record.tenant_id),
        done=lambda _: after_new_password(
            p, record.tenant_id, _username_of(record.tenant_id, record.subject_id), password,
            lambda actions: p.message(200, tenant_name=business, section=STAFF, heading="Your password was changed",
                                      paragraphs=["From now on, sign in with your username and your new password.",
                                                  "We let you know by email or text message, so that a change you "
                                                  "did not make does not go unnoticed."], actions=actions)))
    if answer:
        return answer
    return p.form_page("pages/staff/reset-new.html", tenant_name=business, section=STAFF,
                       title="Choose a new password", button="Change password", errors=errors, step="complete",
                       username=_username_of(record.tenant_id, record.subject_id))


def _username_of(tenant_id: str, person_id: str) -> str | None:
    from chalicelib.core.models import Person
    try:
        return Person.get(tenant_id, person_id).username
    except pynamodb_exceptions.DoesNotExist:
        return None
