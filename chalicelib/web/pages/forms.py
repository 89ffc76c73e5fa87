"""What a posted form carries and what went wrong with it: the urlencoded body, the required fields, and a flow's
refusal put into words next to the field it concerns (or, when it is about the link itself, the code of the
explanation page to show instead of the form)."""
import email.errors
import email.parser
import email.policy
import urllib.parse
from dataclasses import dataclass

from chalicelib.core.errors import Error
from chalicelib.core.security.passwords import RULE_MESSAGES
from chalicelib.web.lazy import lazy

pydantic = lazy("pydantic")

MAX_FORM_BYTES = 16 * 1024

# Link problems (single_use.look_up and the flows) become an explanation page, never a form error.
REPLACED = ("A newer link was sent", "This link was replaced by a newer one: use the link in the most recent message.")
LINK_PROBLEMS = {
    "token_invalid": ("This link does not work",
                      "It may have been cut short when it was copied. Open it again from the email or text message."),
    "token_used": ("This link was already used", "Each link works once, to keep your account safe."),
    "token_expired": ("This link has expired", "Links stop working after a while, to keep your account safe."),
    "invitation_expired": ("This invitation has expired",
                           "Invitations stop working after a while, to keep your account safe."),
    "invitation_replaced": REPLACED,
    "link_replaced": REPLACED,
    "invitation_revoked": ("This invitation was withdrawn", "The business withdrew this invitation."),
    "flow_expired": ("This reset has timed out", "A password reset has to be finished within 30 minutes."),
    "flow_dead": ("Too many wrong codes", "After five wrong codes a reset stops working, to keep your account safe."),
    "change_expired": ("The time to change your password ran out",
                       "You have 10 minutes after signing in to choose a new password."),
    "link_missing": ("Open the link from your message",
                     "This page works from the link in the email or text message you received."),
    "access_link_expired": ("This link has expired",
                            "Secure access links work for a limited time, to keep the account safe."),
    "access_link_rotated": ("A newer link was made", "The business replaced this link with a new one."),
}
LINK_STATUS = {"token_invalid": 400, "link_missing": 400}

NEW_PASSWORD_REQUIRED = {"new_password": "Enter a new password.",
                         "new_password_confirm": "Type the new password again."}


class Errors:
    """What went wrong with a form: messages per field (shown next to it) and for the form as a whole; all are
    listed in the aria-live summary at the top, each linked to its field (templates/pages/forms.html)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.general: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> "Errors":
        if name:
            self.fields.setdefault(name, message)
        else:
            self.general.append(message)
        return self

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    @property
    def first(self) -> str | None:
        return next(iter(self.fields), None)


def require(form: dict, errors: Errors, messages: dict[str, str]) -> None:
    for name, message in messages.items():
        if not form.get(name, "").strip():
            errors.add(name, message)


def parse_form(raw: bytes | None) -> dict[str, str]:
    raw = raw or b""
    if len(raw) > MAX_FORM_BYTES:
        return {}
    try:
        parsed = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=30)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items()}


@dataclass
class UploadedFile:
    """A file field of a multipart form: the name the browser gave (no folders) and its bytes, as sent."""
    filename: str
    data: bytes


class FormProblem(Exception):
    """A multipart body that cannot be read; its message says so in words (the page answers 400, nothing done)."""


MAX_PARTS = 30


def parse_multipart(raw: bytes | None, content_type: str, max_bytes: int) -> tuple[dict[str, str], dict[str,
                                                                                                    UploadedFile]]:
    """The text fields and the files of a multipart/form-data body (a form with a file field). Read with the
    standard library's MIME parser (policy HTTP), which keeps a file's bytes exactly as they were sent; a body over
    `max_bytes` is refused before it is parsed."""
    raw = raw or b""
    if len(raw) > max_bytes:
        raise FormProblem(f"The file is over {max_bytes // (1024 * 1024)} MB: split it into smaller files.")
    head = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n")
    if not head.get_boundary():
        raise FormProblem("The form was not sent as a file upload the page can read. Choose the file and send "
                          "it again from this page.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    cut = (email.errors.StartBoundaryNotFoundDefect, email.errors.CloseBoundaryNotFoundDefect)
    if not parts or len(parts) > MAX_PARTS or any(isinstance(d, cut) for d in message.defects):
        raise FormProblem("The form arrived incomplete, so nothing was done. Choose the file and send it again.")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields or name in files:
            continue  # a part without a name, or a name again: the first one counts, as in parse_form
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:  # a file field (filename="" when none was chosen)
            files[name] = UploadedFile(filename.replace("\\", "/").rsplit("/", 1)[-1], data)
        else:
            try:
                fields[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise FormProblem("The form arrived in a form the page cannot read, so nothing was done.") from None
    return fields, files


def try_again_in(err: Error) -> str:
    """"5 minutes", from a refusal's retry_after (seconds), rounded up to a whole minute."""
    minutes = max(1, (int(err.extra.get("retry_after", 60)) + 59) // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def explain(exc: Exception, errors: Errors, fields: dict[str, str], password: str = "") -> str | None:
    """Puts a flow's refusal into `errors`, in words, next to the field it is about (`fields`: the flow's name
    of a field → the form's). Returns the code when the refusal is about the link itself (the caller shows the
    explanation page instead of the form)."""
    if isinstance(exc, pydantic.ValidationError):
        for err in exc.errors(include_url=False, include_input=False):
            name = fields.get(str(err["loc"][0]) if err["loc"] else "", None)
            if err["type"] in ("missing", "string_too_short"):
                errors.add(name, "This cannot be empty.")
            elif "email" in str(err["loc"]):
                errors.add(name, "Enter an email address, like name@example.com.")
            else:
                errors.add(name, "This is too long or not in the expected form.")
        return None
    assert isinstance(exc, Error)
    if exc.code in LINK_PROBLEMS:
        return exc.code
    problems = exc.extra.get("fields")
    if problems and all(isinstance(f, dict) and "code" in f for f in problems):  # every field's problem at once
        for f in problems:
            explain(type(exc)(f["code"], f["problem"], field=f["field"]), errors, fields, password)
        return None
    name = fields.get(exc.extra.get("field") or "", None)
    if exc.code in RULE_MESSAGES:
        from chalicelib.core.security import passwords
        failures = passwords.policy_failures(password) or [exc.code]
        errors.add(name, " ".join(RULE_MESSAGES[c] for c in failures))
    elif exc.code == "code_invalid" and "attempts_left" in exc.extra:
        left = exc.extra["attempts_left"]
        errors.add(name, f"That code is not right. You have {left} {'try' if left == 1 else 'tries'} left.")
    elif exc.code in ("account_locked", "too_many_requests"):
        from chalicelib.core import lockout
        what = "attempts"  # the other limits count one email, identifier or client, not the network
        if exc.code == "account_locked":
            what = "failed sign-ins"
        elif exc.message == lockout.FROM_YOUR_NETWORK:
            what = "attempts from your network"
        errors.add(None, f"Too many {what}. Try again in {try_again_in(exc)}.")
    else:
        errors.add(name, exc.message)
    return None
