"""What the pages that email and SMS links open have in common: the business a page is for, the link's token
(it leaves the URL on first load), the page that explains a link that no longer works, and the POST half of a
form (CSRF, required fields, the flow, its refusal in words).

The link token leaves the URL on first load: GET ?token= is checked without spending it (single_use.look_up) and
answered 303 to the same path without the query, the token now in an HttpOnly, path-scoped cookie."""
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain, require
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

pydantic = lazy("pydantic")
pynamodb_exceptions = lazy("pynamodb.exceptions")


def tenant(tenant_id: str | None):
    """The business, when it exists and is active (read now, not from the guard's cache)."""
    from chalicelib.core import tenants
    return tenants.active(tenant_id)


def tenant_name(tenant_id: str | None) -> str | None:
    found = tenant(tenant_id)
    return found.name if found else None


def token_tenant(token: str | None) -> str | None:
    """The business a link belongs to even when the link no longer works (for its name and the next step)."""
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    if not token or len(token) > 100:
        return None
    try:
        return Token.get(token_hash(token)).tenant_id
    except pynamodb_exceptions.DoesNotExist:
        return None


@dataclass(frozen=True)
class LinkHelp:
    """What one page says under a link that does not work, after why (LINK_PROBLEMS): the next steps, and a
    button that takes them on the business's own page ((text, path); the business's ?tenant_id= is added).
    "{business}" in a step is the business's name, or `business` when it is not known."""
    section: str
    steps: tuple[str, ...]
    action: tuple[str, str] | None = None
    unknown: tuple[str, ...] | None = None  # the steps when the business is not known or there is no link
    business: str = "the business"
    used_codes: tuple[str, ...] = ()  # a link already used may mean the account exists: these codes say so
    used_steps: tuple[str, ...] = ()  # before the steps, with `used_action` as the button
    used_action: tuple[str, str] | None = None
    by_code: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # other steps for these codes

    def page(self, p: Page, code: str, tenant_id: str | None) -> Response:
        name = tenant_name(tenant_id)
        steps, action = self.steps, self.action
        if code in self.by_code:
            steps, action = self.by_code[code], None
        elif not tenant_id or code == "link_missing":
            steps, action = self.unknown or steps, None
        elif code in self.used_codes:
            steps, action = (*self.used_steps, *steps), self.used_action
        actions = [(action[0], url(action[1], tenant_id=tenant_id))] if action else []
        return p.link_problem(code, tenant_name=name, section=self.section, actions=actions,
                              next_steps=[step.format(business=name or self.business) for step in steps])


class Opened(NamedTuple):
    token: str
    record: Any  # models.Token
    subject: Any  # the person or portal user the link is for
    tenant_name: str | None


def open_link(p: Page, kind: str, cookie: str, link_help: LinkHelp, *, subject: Any, gone: str = "token_invalid",
              without: Callable[[Page], Response], max_age: int = 3600,
              expired_code: str = "token_expired") -> Opened | Response:
    """The link this request carries, or the answer to give instead. A token in the query is checked without
    spending it, then moved to `cookie` with a 303 to the same path; later loads read the cookie. A link that
    does not work is explained (`link_help`); without one, `without(p)`. `subject` is the model of whom the link is
    for (its record gone: `gone`)."""
    from chalicelib.core import single_use
    token = p.query.get("token") if "token" in p.query else p.state(cookie)
    if token is None:
        return without(p)
    try:
        record = single_use.look_up(token, kind, expired_code=expired_code)
    except Error as err:
        if "token" not in p.query:
            p.clear_cookie(cookie)
        return link_help.page(p, err.code, token_tenant(token))
    if "token" in p.query:
        p.keep(cookie, token, max_age)
        return p.redirect(p.self_url(**{k: v for k, v in p.query.items() if k != "token"}))
    try:
        person = subject.get(record.tenant_id, record.subject_id)
    except pynamodb_exceptions.DoesNotExist:
        return link_help.page(p, gone, record.tenant_id)
    return Opened(token, record, person, tenant_name(record.tenant_id))


def submit(p: Page, errors: Errors, *, required: dict[str, str], flow: Callable[[], Any], fields: dict[str, str],
           done: Callable[[Any], Response | None], step: str | None = None, password: str = "",
           check: Callable[[Errors], None] | None = None, problem: Callable[[str], Response] | None = None,
           cookie: str | None = None) -> Response | None:
    """The POST half of a form (of its `step`, on a page with several): CSRF, the required fields, `check` (the
    form's own checks), then the flow (`fields`: its names of the form's fields). A refusal about the link itself
    clears `cookie` and ends on `problem(code)`; one the person can fix goes into `errors`. Success clears `cookie`
    (the link is spent) and ends on `done(what the flow answered)`. None: show the form (again)."""
    if p.method != "POST" or (step is not None and p.form.get("step") != step):
        return None
    if not p.csrf_ok():
        p.csrf_failed(errors)
        return None
    require(p.form, errors, required)
    if not errors and check:
        check(errors)
    if errors:
        return None
    try:
        result = flow()
    except (Error, pydantic.ValidationError) as exc:
        code = explain(exc, errors, fields, password)
        if not code or not problem:
            return None
        if cookie:
            p.clear_cookie(cookie)
        return problem(code)
    if cookie:
        p.clear_cookie(cookie)
    return done(result)


def same_passwords(p: Page, name: str, confirm: str) -> Callable[[Errors], None]:
    """A `check` for submit: the password typed twice the same."""
    def check(errors: Errors) -> None:
        if p.form.get(name, "") != p.form.get(confirm, ""):
            errors.add(confirm, "The two passwords are not the same.")
    return check
