"""People (accounts:manage): the Employees and Technicians lists with their account status, a status filter and
Actions on the people ticked (Send Account Invite / Send Password Reset: a confirmation of who gets it and who is
left out and why, then Send and the run's result), and Add employee / Add technician. A person's own page is
people_actions.py; the words are people_words.py. Every step calls the flow the JSON API calls (routes/people.py)."""
import re
import uuid

from chalice import Response

from chalicelib.core.errors import Error, Invalid
from chalicelib.web.console import people_words as words
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain, require
from chalicelib.web.pages.render import url

pydantic = lazy("pydantic")
staff_accounts = lazy("chalicelib.flows.staff.staff_accounts")
staff_bulk = lazy("chalicelib.flows.staff.staff_bulk")

ACCOUNTS = "accounts:manage"
PAGE_SIZE = 20  # a page's checkboxes, with the form's other fields, stay under the form parser's 30 fields
MAX_PICKED = 100
LISTS = {"employees": ("employee", "Employees"), "technicians": ("technician", "Technicians")}
CONFIRM, SEND = "/console/people/confirm", "/console/people/send"


def status_of_error(err: Error) -> int:
    return {"Invalid": 400, "Forbidden": 403, "NotFound": 404, "Conflict": 409}.get(type(err).__name__, 400)


# --- the lists ---------------------------------------------------------------------------------------------

def _list(c: Console, which: str, *, errors: Errors | None = None, picked: frozenset = frozenset(),
          status: int = 200) -> Response:
    kind, title = LISTS[which]
    errors = errors or Errors()
    given = c.query if c.page.method == "GET" else c.form  # a POST that failed shows the page it came from
    chosen, cursor = given.get("status") or None, given.get("cursor") or None
    items, next_cursor = [], None
    try:
        found = staff_accounts.list_people(c.tenant_id, {"kind": kind, "status": chosen, "cursor": cursor,
                                                          "limit": str(PAGE_SIZE)})
        items, next_cursor = found["items"], found["next_cursor"]
    except Invalid as err:  # a status or cursor typed by hand
        errors.add(None, "That filter or page is not one this list offers; showing everyone."
                   if err.extra.get("field") in ("status", "cursor") else err.message)
        chosen, status = None, 400
        items = staff_accounts.list_people(c.tenant_id, {"kind": kind, "limit": str(PAGE_SIZE)})["items"]
    here = f"/console/people/{which}"
    return c.html("console/people-list.html", status=status, title=title, which=which, lists=LISTS,
                  people=items, chosen=chosen, cursor=cursor, picked=picked, errors=errors,
                  next_href=url(here, status=chosen, cursor=next_cursor) if next_cursor else None,
                  add_href=f"{here}/new", add_label=f"Add {kind}", statuses=words.STATUS_WORDS,
                  actions=words.BULK_ACTIONS, confirm_csrf=c.csrf(CONFIRM))


@console_page("/console/people/employees", ACCOUNTS, form=False)
def employees(c: Console) -> Response:
    """Employees with their account status; tick some and choose an action."""
    return _list(c, "employees")


@console_page("/console/people/technicians", ACCOUNTS, form=False)
def technicians(c: Console) -> Response:
    """Technicians with their account status; tick some and choose an action."""
    return _list(c, "technicians")


# --- Actions: confirm, then send ---------------------------------------------------------------------------

def _which(form: dict) -> str:
    given = form.get("list", "")
    return given if given in LISTS else "employees"


def _ids(values: list[str]) -> list[str]:
    ids = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(ids) > MAX_PICKED or any(len(v) > 64 for v in ids):
        raise Invalid("too_many_people", f"Choose at most {MAX_PICKED} people at a time.")
    return ids


def _picked(form: dict) -> list[str]:
    """The rows ticked (pick-N), or every row of the page when "all on this page" was ticked (the page's ids
    travel in one field, `rows`, so the server acts on exactly the rows the admin saw, with or without JS)."""
    values = [v for k, v in form.items() if k.startswith("pick-")]
    if form.get("all") == "page":
        values += form.get("rows", "").split()
    return _ids(values)


@console_page(CONFIRM, ACCOUNTS)
def confirm(c: Console) -> Response:
    """Who will get the message and who is left out, and why: the bulk flow's dry run (nothing is sent)."""
    which = _which(c.form)
    if not c.posted():
        return _list(c, which, status=400) if c.stale else c.page.redirect(url("/console/people/employees"))
    errors = Errors()
    kind = c.form.get("action", "")
    try:
        ids = _picked(c.form)
    except Invalid as err:
        return _list(c, which, errors=errors.add(None, err.message), status=400)
    if kind not in words.BULK_ACTIONS:
        errors.add("action", "Choose an action.")
    if not ids:
        errors.add(None, "Tick at least one person, or All on this page.")
    if errors:
        return _list(c, which, errors=errors, picked=frozenset(ids), status=400)
    result = staff_bulk.bulk(c.principal, kind, staff_bulk.BulkRequest(person_ids=ids, type="dry_run"), c.ip)
    going = [row for row in result["outcomes"] if row["outcome"] == "would_send"]
    left_out = [row for row in result["outcomes"] if row["outcome"] != "would_send"]
    return c.html("console/people-confirm.html", title=f"{words.BULK_ACTIONS[kind]}: check who gets it",
                  action_label=words.BULK_ACTIONS[kind], kind=kind, going=going, left_out=left_out,
                  ids=" ".join(row["person_id"] for row in going), which=which, words=words,
                  back_href=url(f"/console/people/{which}", status=c.form.get("status") or None),
                  send_csrf=c.csrf(SEND), run=uuid.uuid4().hex)


@console_page(SEND, ACCOUNTS)
def send(c: Console) -> Response:
    """Sends to the people confirmed, through the same bulk flow as the API (each is checked again now)."""
    which = _which(c.form)
    if not c.posted():
        return _list(c, which, status=400) if c.stale else c.page.redirect(url("/console/people/employees"))
    kind = c.form.get("action", "")
    try:
        ids = _ids(c.form.get("ids", "").split())
        run = c.form.get("run", "")
        if kind not in words.BULK_ACTIONS or not ids or not re.fullmatch(r"[0-9a-f]{32}", run):
            raise Invalid("invalid_request", "Nothing to send: choose the people again.")
        # the confirmation's run id: Send pressed twice (or the form sent again) sends once, and shows that run
        result = staff_bulk.bulk(c.principal, kind, staff_bulk.BulkRequest(person_ids=ids, type="send"), c.ip,
                                 run_id=run)
    except Error as err:
        return _list(c, which, errors=Errors().add(None, err.message), status=status_of_error(err))
    return c.done(f"/console/people/jobs/{result['job_id']}", "sent", list=which)


@console_page("/console/people/jobs/{job_id}", ACCOUNTS, form=False)
def job(c: Console, job_id: str) -> Response:
    """A bulk run's outcome, person by person."""
    try:
        result = staff_bulk.get_bulk_job(c.tenant_id, job_id)
    except Error:
        return c.html("console/people-missing.html", status=404, title="Not found",
                      heading="This run was not found", words_back="People", back_href="/console/people/employees")
    which = _which(c.query)
    label = words.BULK_ACTIONS.get(result["kind"], result["kind"])
    return c.html("console/people-job.html", title=f"{label}: result", label=label, result=result, words=words,
                  back_href=f"/console/people/{which}", back_label=LISTS[which][1])


job.notices = {"sent": "Done. Each person's outcome is below."}  # type: ignore[attr-defined]


# --- Add employee / Add technician -------------------------------------------------------------------------

ADD_FIELDS = {"name": "name", "email": "email", "mobile": "mobile", "role": "role", "mobile_access": "mobile_access"}
MOBILE_WORDS = "Enter a mobile number with its country code, like +1 201 555 0123."


def _add(c: Console, which: str) -> Response:
    kind, title = LISTS[which]
    errors, form = Errors(), c.form
    if c.posted():
        require(form, errors, {"name": "Enter their name."})
    if c.posted() and not errors:
        fields = {"kind": kind, "name": form.get("name", "").strip(),
                  "email": form.get("email", "").strip() or None, "mobile": form.get("mobile", "").strip() or None}
        if kind == "employee":
            fields["role"] = form.get("role") or "staff"
        else:
            fields["mobile_access"] = form.get("mobile_access") == "yes"
        try:
            out = staff_accounts.create_person(c.principal, staff_accounts.PersonCreate(**fields), c.ip)
            return c.done(f"/console/people/{out.person_id}", "created")
        except (pydantic.ValidationError, Error) as exc:
            explain(exc, errors, ADD_FIELDS)
            if isinstance(exc, pydantic.ValidationError) and "mobile" in errors.fields:
                errors.fields["mobile"] = MOBILE_WORDS
    return c.html("console/people-add.html", status=400 if errors else 200, title=f"Add {kind}", kind=kind,
                  which=which, list_title=title, errors=errors, form=form if c.page.method == "POST" else {},
                  roles=[(r, words.ROLE_WORDS[r]) for r in ("staff", "office", "admin")])


@console_page("/console/people/employees/new", ACCOUNTS)
def add_employee(c: Console) -> Response:
    """Add employee: name, email (needed), mobile, role; no account yet."""
    return _add(c, "employees")


@console_page("/console/people/technicians/new", ACCOUNTS)
def add_technician(c: Console) -> Response:
    """Add technician: name, email or mobile, mobile app access; no account yet."""
    return _add(c, "technicians")
