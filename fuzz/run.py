"""`make fuzz`: Schemathesis over every operation of /v1/openapi.json, against the real local stack.

1. starts `python -m ops.local.stack` on free ports, its state (moto.log, outbox) in .local/fuzz/, so a
   `make run` next to it is not disturbed; the demo tenant, admin and partner get generated credentials;
2. prepares the identities the routes need: the demo partner portal enabled by the admin (its agreement
   accepted) and a portal user registered from the invitation link the outbox receives; and records whose ids
   half of the generated path parameters take (known_ids: people, an invited user, a bulk job);
3. runs `st run` (fuzz/hooks.py signs each operation in with the right token) with the checks
   not_a_server_error, status_code_conformance and response_schema_conformance, every phase (examples,
   coverage, fuzzing, stateful), at most --max-examples cases per operation, inside a hard wall-clock bound;
4. stops the stack (SIGTERM to its process group, SIGKILL after 15 s).

Exit code: Schemathesis's (0: no failure), 1 when the stack does not start or the bound is hit.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from xml.etree import ElementTree  # our own Schemathesis report, not untrusted input

ROOT = Path(__file__).resolve().parents[1]
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
TENANT, ADMIN = "demo", "admin@demo.example"  # ops/seed.py
PARTNER_PORTAL, PARTNER_CLIENT = "blue-collar-coach", "demo-partner"
PORTAL_EMAIL = "linh.nguyen@example.com"  # on the Nguyen Family record of the demo tenant
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FuzzError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def password() -> str:
    """Meets the password policy: long, upper, lower, digit, not common."""
    return "Fz" + secrets.token_urlsafe(15) + "a7"


def call(api: str, method: str, path: str, body=None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(api + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def expect(answer: tuple[int, dict], status: int, what: str) -> dict:
    if answer[0] != status:
        raise FuzzError(f"{what}: expected {status}, got {answer[0]} {answer[1]}")
    return answer[1]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise FuzzError(f"{what} within {timeout_s:.0f} s")


def start_stack(state: Path, env: dict) -> subprocess.Popen:
    log = open(state / "stack.log", "w")
    return subprocess.Popen([sys.executable, "-m", "ops.local.stack"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """The whole process group: the stack stops its children on SIGTERM; SIGKILL what outlives 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def prepare(api: str, outbox: Path, admin_password: str, stack: subprocess.Popen) -> dict:
    """Signs the admin in, enables the demo partner portal, registers a portal user; returns what hooks need."""
    def healthy():
        if stack.poll() is not None:
            raise FuzzError(f"the local stack exited with code {stack.returncode}")
        try:
            return call(api, "GET", "/v1/health")[0] == 200
        except OSError:
            return False
    wait_for(healthy, 120, "the local stack did not answer GET /v1/health")
    admin = expect(call(api, "POST", "/v1/staff/sign-in", {"tenant_id": TENANT, "username": ADMIN,
                                                           "password": admin_password}), 200, "admin sign-in")
    token = admin["access_token"]
    admin_id = expect(call(api, "GET", "/v1/staff/me", token=token), 200, "GET /v1/staff/me")["person_id"]

    agreement = expect(call(api, "GET", f"/v1/partner-portals/{PARTNER_PORTAL}/agreement", token=token), 200,
                       "the partner agreement")
    expect(call(api, "POST", f"/v1/partner-portals/{PARTNER_PORTAL}/enable",
                {"accept": True, "agreement_version": agreement["version"]}, token=token), 200,
           "enabling the demo partner portal")

    customers = expect(call(api, "GET", "/v1/customers", token=token), 200, "GET /v1/customers")["items"]
    customer_id = next(c["customer_id"] for c in customers if PORTAL_EMAIL in c["emails"])
    user = expect(call(api, "POST", "/v1/portal/invitations", {"customer_id": customer_id, "email": PORTAL_EMAIL,
                                                               "access": "billing"}, token=token), 202,
                  "inviting the portal user")

    def register_link():  # minted when the dispatcher delivers the invitation (README: Invitations)
        for path in outbox.glob("*.json"):
            message = json.loads(path.read_text())
            if message["to"] == PORTAL_EMAIL:
                return next((link for link in message["links"] if "/register?token=" in link), None)
        return None
    link = wait_for(register_link, 60, "no invitation email in the outbox")
    portal_password = password()
    expect(call(api, "POST", "/v1/portal/register", {"token": link.split("token=", 1)[1],
                                                     "password": portal_password}), 200, "registering")
    known = known_ids(api, token, customers)
    return {"FUZZ_ADMIN_PASSWORD": admin_password, "FUZZ_PORTAL_PASSWORD": portal_password,
            "FUZZ_PROTECTED_IDS": ",".join([admin_id, user["user_id"], PARTNER_PORTAL]), "known": known}


def known_ids(api: str, token: str, customers: list[dict]) -> dict[str, list[str]]:
    """Records the fuzzer cannot make itself (its random emails and mobiles rarely pass validation, and nothing
    in the spec links to them): an employee, a technician, an invited portal user, a bulk job. (A customer's access
    link is made too, so its routes have one to show and renew; its token travels in a body, not a path.)
    Half of the generated ids of those parameters are these (config.toml), so the routes behind them are reached."""
    people = [expect(call(api, "POST", "/v1/people", body, token=token), 201, "creating a person")["person_id"]
              for body in ({"kind": "employee", "name": "Fuzz Employee", "email": "fuzz.employee@example.com"},
                           {"kind": "technician", "name": "Fuzz Tech", "mobile": "+12015550123"})]
    oakridge = next(c for c in customers if "pm@oakridge.example" in c["emails"])
    invited = expect(call(api, "POST", "/v1/portal/invitations", {"customer_id": oakridge["customer_id"],
                                                                  "email": "pm@oakridge.example"}, token=token),
                     202, "inviting a second portal user")["user_id"]
    harper = next(c for c in customers if "jamie.harper@example.com" in c["emails"])  # no portal user: link opens
    expect(call(api, "POST", f"/v1/customers/{harper['customer_id']}/access-link", token=token), 201,
           "creating an access link")
    job = expect(call(api, "POST", "/v1/people/bulk-invite", {"person_ids": people[:1], "type": "send"},
                      token=token), 200, "a bulk invitation")["job_id"]
    return {"person_id": people, "user_id": [invited], "job_id": [job]}


def write_config(path: Path, known: dict[str, list[str]]) -> None:
    """Schemathesis config: a dictionary of known ids per path parameter, used for half of the generated values."""
    lines = ["[dictionaries]"]
    lines += [f"{name.replace('_', '-')} = {{ values = {json.dumps(values)} }}" for name, values in known.items()]
    lines += ["", "[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name.replace("_", "-")}", probability = 0.5 }}' for name in known]
    path.write_text("\n".join(lines) + "\n")


def junit_line(report_dir: Path) -> str:
    """The closing line CI reads: one test per operation (and one for the stateful phase)."""
    reports = sorted(report_dir.glob("junit-*.xml"))
    if not reports:
        return "fuzz: no JUnit report"
    suites = ElementTree.parse(reports[-1]).getroot()
    tests = int(suites.get("tests", 0))
    failed = int(suites.get("failures", 0)) + int(suites.get("errors", 0))
    return f"fuzz: {tests - failed} passed, {failed} failed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=25, help="cases per operation and phase (25)")
    parser.add_argument("--timeout", type=float, default=600, help="hard wall-clock bound in seconds (600)")
    parser.add_argument("--workers", default="2", help="concurrent Schemathesis workers (2)")
    parser.add_argument("--seed", help="Schemathesis seed, to replay a run")
    args = parser.parse_args(argv)

    started = time.monotonic()
    state = ROOT / ".local" / "fuzz"
    shutil.rmtree(state, ignore_errors=True)
    (state / "outbox").mkdir(parents=True)
    api_port, aws_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    admin_password, partner_secret = password(), secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTAL_"))}
    env.update(PYTHONUNBUFFERED="1", PORTAL_API_PORT=str(api_port), PORTAL_AWS_PORT=str(aws_port),
               PORTAL_LOCAL_DIR=str(state), PORTAL_DEMO_ADMIN_PASSWORD=admin_password,
               PORTAL_DEMO_PARTNER_SECRET=partner_secret,
               # every call comes from 127.0.0.1: the fuzzer's thousands of wrong sign-ins and tokens would
               # otherwise soon have the hooks' own sign-ins refused (429 is declared and checked either way)
               PORTAL_FAILED_GUESSES_PER_IP="1000000", PORTAL_SIGN_IN_MAX_FAILURES="1000000")
    stack = start_stack(state, env)
    try:
        try:
            prepared = prepare(api, state / "outbox", admin_password, stack)
        except FuzzError as exc:
            print(f"fuzz: {exc}; the stack's log:\n" + (state / "stack.log").read_text()[-4000:], file=sys.stderr)
            return 1
        print(f"fuzz: local stack ready at {api} in {time.monotonic() - started:.1f} s; running Schemathesis",
              flush=True)
        write_config(state / "config.toml", prepared.pop("known"))
        hooks_env = dict(env, SCHEMATHESIS_HOOKS="fuzz.hooks", PYTHONPATH=str(ROOT), FUZZ_API=api,
                         FUZZ_TENANT=TENANT, FUZZ_ADMIN_USERNAME=ADMIN, FUZZ_PORTAL_EMAIL=PORTAL_EMAIL,
                         FUZZ_PARTNER_CLIENT=PARTNER_CLIENT, FUZZ_PARTNER_SECRET=partner_secret, **prepared)
        command = [str(Path(sys.executable).with_name("st")), "--config-file", str(state / "config.toml"), "run",
                   f"{api}/v1/openapi.json", "--checks", CHECKS,
                   "--max-examples", str(args.max_examples), "--workers", str(args.workers),
                   "--generation-database", "none", "--request-timeout", "30",
                   "--report", "junit", "--report-dir", str(state / "report")]
        if args.seed:
            command += ["--seed", args.seed]
        remaining = args.timeout - (time.monotonic() - started)
        st = subprocess.Popen(command, cwd=state, env=hooks_env, start_new_session=True,  # .schemathesis/ there
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        output: list[str] = []

        def relay():  # Schemathesis's own report, as it comes; kept to read the number of cases at the end
            for line in st.stdout:
                output.append(line)
                print(line, end="", flush=True)
        echo = threading.Thread(target=relay, daemon=True)
        echo.start()
        try:
            rc = st.wait(max(1.0, remaining))
        except subprocess.TimeoutExpired:
            os.killpg(st.pid, signal.SIGKILL)
            st.wait()
            print(f"fuzz: FAILED: the run exceeded its bound of {args.timeout:.0f} s (--timeout / FUZZ_TIMEOUT)",
                  file=sys.stderr)
            return 1
        except BaseException:  # Ctrl-C: Schemathesis runs in its own session, so it goes too
            os.killpg(st.pid, signal.SIGKILL)
            raise
        echo.join(10)
        took = time.monotonic() - started
        cases = next((m[1] for line in reversed(output) if (m := re.search(r"(\d+) generated", line))), "?")
        print(f"fuzz: {'passed' if rc == 0 else 'FAILED'}: {cases} generated cases in {took:.0f} s (stack, "
              f"preparation and Schemathesis); stack log {state / 'stack.log'}, JUnit in {state / 'report'}")
        print(junit_line(state / "report"), flush=True)
        return rc
    finally:
        stop(stack)
