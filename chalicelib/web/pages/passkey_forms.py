"""What every passkey form shares, in the console and on the hosted pages (issue 18): the options rendered into
the form (the pages' CSP lets no script fetch), the browser's answer read back, and the one script,
/assets/passkeys.js (templates/pages/passkey.html has the form macro)."""
import json

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.api import Public, mark_view
from chalicelib.web.pages.render import asset

SCRIPT_PATH = "/assets/passkeys.js"


def options_json(options: dict | None) -> str:
    """The options for the form's attribute (autoescaped there)."""
    return json.dumps(options, separators=(",", ":")) if options is not None else ""


def credential_from(form: dict, model):
    """The browser's answer the script put in `credential`, as the flow's model; None when there is none (no
    JavaScript) or it is not one."""
    raw = form.get("credential", "")
    if not raw:
        return None
    try:
        return model.model_validate_json(raw)
    except ValueError:  # pydantic's ValidationError: not JSON, or not a credential
        return None


def factor_options(mfa_token: str) -> dict | None:
    """A passkey challenge for the factor page's sign-in (None when the person has no passkey)."""
    from chalicelib.flows.staff import mfa_signin
    try:
        return mfa_signin.passkey_options(mfa_signin.MfaPasskeyOptions(mfa_token=mfa_token)).options
    except Error as err:
        if err.code == "no_passkey":
            return None
        raise


def register_asset(app) -> None:
    """/assets/passkeys.js, served as /assets/pages.js is (serve.static_files): cached an hour, nosniff."""
    def view():
        return Response(body=asset("passkeys.js"), status_code=200,
                        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "same-origin",
                                 "Content-Security-Policy": "default-src 'none'"})
    view.__name__ = "page_passkey_script"
    mark_view(view, Public(), page=True)
    app.route(SCRIPT_PATH, methods=["GET"], name=view.__name__)(view)
