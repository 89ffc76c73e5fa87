"""`portal-access` (also `python -m ops.cli`): the operator console. It talks to one stage's AWS resources
with the usual AWS environment: credentials, AWS_REGION, PORTAL_STAGE (default `local`). Stage local runs only
against a local AWS endpoint (AWS_ENDPOINT_URL, e.g. http://127.0.0.1:4566) and refuses to start without one;
`make console ARGS="tenant list"` (ops/local/console.py) sets all of it from the running `make run`.

Each command group is an `add_<group>(commands)` function that adds its argparse subcommands and gives each a
`run` function: tenant, app, partner-portal, keys, dlq, audit. Exit codes: 0 done,
1 the command failed, 2 bad usage; every error is one line on stderr."""
import argparse
import json
import sys
from pathlib import Path


class Failure(Exception):
    """A command that cannot be done as asked; printed as one line."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _stage() -> str:
    from chalicelib.core import config
    return config.stage()


# --- partner-portal ---------------------------------------------------------------------------------------------

def _permissions(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _agreement(args) -> tuple[str | None, str | None]:
    if (args.agreement_file is None) != (args.agreement_version is None):
        raise Failure("--agreement-file and --agreement-version go together")
    if args.agreement_file is None:
        return None, None
    try:
        return args.agreement_version, Path(args.agreement_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"cannot read {args.agreement_file}: {getattr(exc, 'strerror', None) or exc}") from None


def _show_secret(portal, secret: str) -> None:
    print(f"client_id      {portal.client_id}")
    print(f"client_secret  {secret}")
    print("The secret is shown only now and stored only as a hash: hand it to the partner over a safe channel.")


def _portal_line(p) -> dict:
    return {"portal_id": p.portal_id, "name": p.name, "client_id": p.client_id, "permissions": list(p.permissions),
            "agreement_version": p.agreement_version}


def portal_create(args) -> None:
    from ops import partner_portals
    version, text = _agreement(args)
    if version is None or text is None:  # (_agreement gives both or neither)
        raise Failure("a new portal needs --agreement-file and --agreement-version")
    portal, secret = partner_portals.create_portal(args.name, args.permissions, version, text, portal_id=args.portal_id,
                                            client_id=args.client_id)
    print(f"created partner portal {portal.portal_id} ({portal.name}) in stage {_stage()}")
    _show_secret(portal, secret)


def portal_update(args) -> None:
    from ops import partner_portals
    version, text = _agreement(args)
    if args.name is None and args.permissions is None and version is None:
        raise Failure("nothing to change: give --name, --permissions or a new agreement")
    portal = partner_portals.update_portal(args.portal_id, name=args.name, permissions=args.permissions,
                                    agreement_version=version, agreement_text=text)
    print(f"updated partner portal {portal.portal_id} in stage {_stage()}: {json.dumps(_portal_line(portal))}")


def portal_list(args) -> None:
    from ops import partner_portals
    portals = partner_portals.list_portals()
    if args.json:
        for p in portals:
            print(json.dumps(_portal_line(p)))
        return
    rows = [("PORTAL", "NAME", "CLIENT", "AGREEMENT", "PERMISSIONS")]
    rows += [(p.portal_id, p.name, p.client_id, p.agreement_version, ",".join(p.permissions)) for p in portals]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])


def portal_rotate_secret(args) -> None:
    from ops import partner_portals
    secret = partner_portals.rotate_secret(args.portal_id)
    portal = partner_portals.operator_portal(args.portal_id)
    print(f"new secret for partner portal {portal.portal_id} in stage {_stage()}; the old one no longer works")
    _show_secret(portal, secret)


def portal_add_user(args) -> None:
    from ops import partner_portals
    user = partner_portals.add_user(args.portal_id, args.name, args.email, "inactive" if args.inactive else "active")
    print(f"added {user.email} ({user.status}) to partner portal {args.portal_id} as user {user.user_id}")


def add_partner_portal(commands) -> None:
    from chalicelib.flows.partners import PERMISSIONS
    catalogue = "permissions: " + ", ".join(PERMISSIONS)
    group = commands.add_parser("partner-portal", help="define partner portals and their credentials",
                                description="Partner portals: what a partner may see once a business enables it.")
    sub = group.add_subparsers(dest="command", required=True, metavar="command")

    def agreement_args(p, required: bool):
        p.add_argument("--agreement-file", required=required, help="the legal agreement text (UTF-8 file)")
        p.add_argument("--agreement-version", required=required,
                       help="its version; businesses must accept a new version before enabling again")

    p = sub.add_parser("create", help="create a portal and print its client secret once", epilog=catalogue)
    p.add_argument("--name", required=True)
    p.add_argument("--permissions", required=True, type=_permissions, help="comma-separated, from the catalogue")
    agreement_args(p, required=True)
    p.add_argument("--portal-id", help="default: the name in lower case with dashes")
    p.add_argument("--client-id", help="the partner's client id (default: the portal id)")
    p.set_defaults(run=portal_create)

    p = sub.add_parser("update", help="change a portal's name, permissions or agreement", epilog=catalogue)
    p.add_argument("portal_id")
    p.add_argument("--name")
    p.add_argument("--permissions", type=_permissions, help="the full new list, comma-separated")
    agreement_args(p, required=False)
    p.set_defaults(run=portal_update)

    p = sub.add_parser("list", help="list portals")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=portal_list)

    p = sub.add_parser("rotate-secret", help="replace the client secret (printed once; the old one stops working)")
    p.add_argument("portal_id")
    p.set_defaults(run=portal_rotate_secret)

    p = sub.add_parser("add-user", help="add a partner user to a portal")
    p.add_argument("portal_id")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--inactive", action="store_true", help="add the user as inactive")
    p.set_defaults(run=portal_add_user)


# --- tenant -----------------------------------------------------------------------------------------------------

def _print_rows(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def tenant_create(args) -> None:
    from chalicelib.flows import tenants
    made = tenants.create(args.tenant_id, args.name, args.admin_email, args.admin_name)
    print(f"created tenant {made['tenant_id']} ({made['name']}); invitation emailed to {made['admin_email']} "
          f"(valid until {made['invitation_expires_at']})")


def tenant_list(args) -> None:
    from chalicelib.flows import tenants
    rows = [{"tenant_id": t.tenant_id, "name": t.name, "status": t.status} for t in tenants.list_all()]
    _print_rows(rows, args.json, ["tenant_id", "name", "status"])


def tenant_show(args) -> None:
    from chalicelib.flows import tenants
    print(json.dumps(tenants.describe(tenants.get(args.tenant_id)), indent=2))


def tenant_status(status: str):
    def run(args) -> None:
        from chalicelib.flows import tenants
        tenants.set_status(args.tenant_id, status)
        print(f"tenant {args.tenant_id} is {'disabled: its users and partners are refused' if status == 'disabled' else 'enabled'}")
    return run


def add_tenant(commands) -> None:
    group = commands.add_parser("tenant", help="onboard and run businesses (tenants)",
                                description="Tenants: create one with its first admin, list, show, disable, enable.")
    sub = group.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser("create", help="create a tenant and email its first admin an invitation")
    p.add_argument("tenant_id")
    p.add_argument("--name", required=True, help="the business's name, shown on every page and email")
    p.add_argument("--admin-email", required=True)
    p.add_argument("--admin-name", default="Administrator")
    p.set_defaults(run=tenant_create)
    p = sub.add_parser("list", help="list tenants")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=tenant_list)
    for name, run, text in (("show", tenant_show, "a tenant's settings and admins"),
                            ("disable", tenant_status("disabled"), "refuse the tenant's users and partners"),
                            ("enable", tenant_status("active"), "let them in again")):
        p = sub.add_parser(name, help=text)
        p.add_argument("tenant_id")
        p.set_defaults(run=run)


# --- app ----------------------------------------------------------------------------------------------------------
# A business's apps (issue 17), for operators setting one up for a business: the same flow as POST /v1/apps, audited
# with the actor "operator".

def _app_flow(call):
    from chalicelib.core.errors import Error
    try:
        return call()
    except Error as exc:
        field = exc.extra.get("field")
        raise Failure(f"{exc.message}{f' ({field})' if field else ''}") from None


def app_create(args) -> None:
    from pydantic import ValidationError

    from chalicelib.flows import apps, tenants
    tenants.get(args.tenant_id)
    try:
        body = apps.AppCreate.model_validate({
            "name": args.name, "audience": args.audience, "client_type": args.type,
            "redirect_uris": args.redirect_uri or [], "post_logout_redirect_uris": args.post_logout_redirect_uri or [],
            "initiate_login_uri": args.initiate_login_uri})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise Failure(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    made = _app_flow(lambda: apps.create(args.tenant_id, body, "operator", None))
    default = ", the default of its audience" if made.is_default else ""
    print(f"created app {made.name!r} ({made.audience}, {made.client_type}{default}) for tenant {args.tenant_id} "
          f"in stage {_stage()}")
    print(f"client_id      {made.client_id}")
    if made.client_secret:
        print(f"client_secret  {made.client_secret}")
        print("The secret is shown only now and stored only as a hash: hand it to the app's developers over a safe "
              "channel.")


def app_list(args) -> None:
    from chalicelib.flows import apps, tenants
    tenants.get(args.tenant_id)
    rows, query = [], {"limit": "100"}
    while True:
        page = apps.list_apps(args.tenant_id, query)
        rows += [{"client_id": a.client_id, "name": a.name, "audience": a.audience, "type": a.client_type,
                  "default": "yes" if a.is_default else "", "redirect_uris": " ".join(a.redirect_uris)}
                 for a in page["items"]]
        if not page["next_cursor"]:
            break
        query["cursor"] = page["next_cursor"]
    _print_rows(rows, args.json, ["client_id", "name", "audience", "type", "default", "redirect_uris"])


def app_rotate_secret(args) -> None:
    from chalicelib.flows import apps, tenants
    tenants.get(args.tenant_id)
    made = _app_flow(lambda: apps.rotate_secret(args.tenant_id, args.client_id, "operator", None))
    print(f"new secret for app {made.client_id} of tenant {args.tenant_id} in stage {_stage()}; the old one no longer "
          "works")
    print(f"client_id      {made.client_id}")
    print(f"client_secret  {made.client_secret}")
    print("The secret is shown only now and stored only as a hash: hand it to the app's developers over a safe channel.")


def add_app(commands) -> None:
    group = commands.add_parser("app", help="a business's apps that sign people in through portal-access",
                                description="Apps: the customer-portal web app, the technicians' mobile app, ... "
                                            "that sign a business's people in through its OpenID Provider.")
    sub = group.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser("create", help="register an app and print its client id (and, if confidential, its secret "
                                      "once)")
    p.add_argument("tenant_id")
    p.add_argument("--name", required=True, help="what people see: \"Continue to <name>\"")
    p.add_argument("--audience", required=True, choices=["portal", "staff"],
                   help="portal: customer portal users; staff: employees and technicians")
    p.add_argument("--type", default="public", choices=["public", "confidential"],
                   help="public (PKCE, no secret: SPAs and mobile apps; the default) or confidential (a secret)")
    p.add_argument("--redirect-uri", action="append", required=True, metavar="URI",
                   help="an exact redirect URI (repeatable, at most 10)")
    p.add_argument("--post-logout-redirect-uri", action="append", metavar="URI", help="repeatable, at most 10")
    p.add_argument("--initiate-login-uri", metavar="URI", help="where \"Continue to <name>\" sends a person")
    p.set_defaults(run=app_create)
    p = sub.add_parser("list", help="list a tenant's apps (never a secret)")
    p.add_argument("tenant_id")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=app_list)
    p = sub.add_parser("rotate-secret", help="replace a confidential app's secret (printed once; the old one stops "
                                             "working)")
    p.add_argument("tenant_id")
    p.add_argument("client_id")
    p.set_defaults(run=app_rotate_secret)


# --- keys ---------------------------------------------------------------------------------------------------------

def keys_rotate(args) -> None:
    from chalicelib.core.security import keys
    print(f"new active signing key {keys.rotate()}; older keys keep verifying until retired")


def keys_list(args) -> None:
    from chalicelib.core.paging import iso
    from chalicelib.core.security import keys
    rows = [{"kid": k["kid"], "created_at": iso(k["created_at"]), "active": k["active"]} for k in keys.list_keys()]
    _print_rows(rows, args.json, ["kid", "created_at", "active"])


def keys_retire(args) -> None:
    from chalicelib.core.security import keys
    if args.kid not in {k["kid"] for k in keys.list_keys()}:
        raise Failure(f"no key {args.kid!r}")
    try:
        keys.retire(args.kid)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    print(f"retired {args.kid}: tokens it signed no longer verify")


def add_keys(commands) -> None:
    group = commands.add_parser("keys", help="the access-token signing keys",
                                description="Signing keys (ES256) in Secrets Manager; JWKS lists every key not retired.")
    sub = group.add_subparsers(dest="command", required=True, metavar="command")
    sub.add_parser("rotate", help="make a new key the active one").set_defaults(run=keys_rotate)
    p = sub.add_parser("list", help="list keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=keys_list)
    p = sub.add_parser("retire", help="remove a key that is no longer active")
    p.add_argument("kid")
    p.set_defaults(run=keys_retire)


# --- dlq ----------------------------------------------------------------------------------------------------------

def dlq_list(args) -> None:
    from chalicelib.core import dead_letters
    rows = []
    for queue in args.queue or list(dead_letters.QUEUES):
        rows += [{"queue": queue, **d} for d in dead_letters.list_dead(queue)]
    _print_rows(rows, args.json, ["queue", "message_id", "receive_count", "summary", "reason"])


def dlq_redrive(args) -> None:
    from chalicelib.core import dead_letters
    for queue in args.queue or list(dead_letters.QUEUES):
        bar = Progress(f"redriving {queue}")
        moved = dead_letters.redrive(queue, progress=bar.advance)
        bar.done()
        print(f"{queue}: moved {moved} message(s) back to the queue")


class Progress:
    """A one-line progress counter on stderr (only when it is a terminal: logs stay clean)."""

    def __init__(self, label: str):
        self.label, self.count = label, 0

    def advance(self, n: int) -> None:
        self.count += n
        if sys.stderr.isatty():
            print(f"\r{self.label}: {self.count}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if sys.stderr.isatty():
            print(file=sys.stderr)


def add_dlq(commands) -> None:
    group = commands.add_parser("dlq", help="dead-lettered messages: list with reasons, move back",
                                description="Dead-letter queues of the bulk-invites and send queues.")
    sub = group.add_subparsers(dest="command", required=True, metavar="command")
    for name, run, text in (("list", dlq_list, "show dead-lettered messages and why they failed"),
                            ("redrive", dlq_redrive, "move them back to their queue once the cause is fixed")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--queue", action="append", choices=["bulk-invites", "send", "send-bulk"],
                       help="only this queue (repeatable; default all)")
        if name == "list":
            p.add_argument("--json", action="store_true")
        p.set_defaults(run=run)


# --- audit --------------------------------------------------------------------------------------------------------

def audit_show(args) -> None:
    from datetime import datetime, timezone

    from chalicelib.core.models import AuditEvent
    from chalicelib.core.paging import iso
    from chalicelib.flows import tenants
    tenants.get(args.tenant_id)
    condition = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            raise Failure("--since: use an ISO date or time, e.g. 2026-11-01 or 2026-11-01T08:00:00Z") from None
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        condition = AuditEvent.event_id >= f"{int(since.timestamp() * 1000):013d}"
    rows = []
    for e in AuditEvent.query(args.tenant_id, range_key_condition=condition):
        if args.actor and e.actor != args.actor:
            continue
        rows.append({"at": iso(e.at), "action": e.action, "actor": e.actor or "", "target": e.target or "",
                     "ip": e.ip or "", "details": e.details.as_dict() if e.details else {}})
    _print_rows(rows, args.json, ["at", "action", "actor", "target", "ip"])


def add_audit(commands) -> None:
    p = commands.add_parser("audit", help="a tenant's audit trail", description="Print a tenant's audit trail, oldest first.")
    p.add_argument("tenant_id")
    p.add_argument("--since", help="ISO date or time (UTC unless it says otherwise)")
    p.add_argument("--actor", help="only events by this actor id")
    p.add_argument("--json", action="store_true", help="JSON lines (with details) instead of a table")
    p.set_defaults(run=audit_show)


# --- the console --------------------------------------------------------------------------------------------------

GROUPS = (add_tenant, add_app, add_partner_portal, add_keys, add_dlq, add_audit)


def build_parser() -> Parser:
    parser = Parser(prog="portal-access", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="group", required=True, metavar="command")
    for add in GROUPS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2); argparse has printed it
        return int(done.code or 0)
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    from chalicelib.core import config
    from chalicelib.flows.tenants import TenantError
    from ops.partner_portals import OperatorError
    try:
        config.require_local_endpoint()  # stage local never reaches a real AWS account
        args.run(args)
    except (Failure, OperatorError, TenantError, config.LocalEndpointMissing) as exc:
        print(f"portal-access: error: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"portal-access: error: AWS call failed in stage {_stage()}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
