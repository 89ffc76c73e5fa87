"""What a new user hit (issue 20), each as a test: the README's "Try it" run as written against a stack on free
ports, the operator console against the running stack (`make console`) and its links on the stack's port, stage
local refusing to run without a local AWS endpoint, the README and docs standing alone and matching the code,
and the wording and links of the expiry warning, the portal invitation and the sign-up email."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import drain, outbox_for
from test_local_stack import free_port, listening, stack_env, wait_for

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The README text under a heading (## or ###) up to the next heading of any level (a `#` line inside a
    fenced block is a shell comment, not a heading)."""
    lines, found, fenced = [], False, False
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#+ ", line):
            if found:
                break
            found = line.rstrip("\n").split(" ", 1)[1] == title
            continue
        if found:
            lines.append(line)
    assert found, title
    return "".join(lines)


def fresh_shell_env(**extra) -> dict:
    """A new terminal's environment: no AWS or PORTAL settings, no venv on PATH (so `python3` is the system's)."""
    env = stack_env(**extra)
    env.pop("PYTHONUNBUFFERED", None)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(key, None)
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if p and Path(p).resolve() != Path(venv_bin).resolve())
    return env


# --- the README's "Try it", against a stack of its own ----------------------------------------------------------

def try_it_block() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", section("Try it"), re.M | re.S)
    assert len(blocks) == 1, "Try it has exactly one sh block: the one a reader pastes"
    return blocks[0]


def try_it_password() -> str:
    match = re.search(r"PORTAL_DEMO_ADMIN_PASSWORD='([^']+)' make run", section("Try it"))
    assert match, "Try it says how to start the stack with the demo admin's password"
    return match.group(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`make run`'s process on free ports, with its own local dir (a developer's .local stays untouched)."""
    local_dir = tmp_path_factory.mktemp("local")
    aws_port, api_port = free_port(), free_port()
    ports = {"PORTAL_API_PORT": str(api_port), "PORTAL_AWS_PORT": str(aws_port), "PORTAL_LOCAL_DIR": str(local_dir)}
    log_path = local_dir / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ops.local.stack"], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=stack_env(PORTAL_DEMO_ADMIN_PASSWORD=try_it_password(), **ports))
    state = local_dir / "stack.json"
    try:
        assert wait_for(lambda: state.exists() or proc.poll() is not None, 90), log_path.read_text()
        assert proc.poll() is None, log_path.read_text()
        yield {"ports": ports, "api": f"http://127.0.0.1:{api_port}", "local_dir": local_dir, "proc": proc,
               "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert not state.exists(), "the stack removes stack.json when it stops"
    assert not listening(api_port) and not listening(aws_port)


def test_the_readme_try_it_runs_as_written_in_a_fresh_shell(stack):
    started = time.monotonic()
    out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", try_it_block()], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=fresh_shell_env(**stack["ports"]))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert time.monotonic() - started < 60
    assert "local stack ready: API " + stack["api"] in out.stdout  # make wait
    assert '"name":"Nguyen Family"' in out.stdout  # the customers
    assert '"email":"linh.nguyen@example.com","status":"invited"' in out.stdout  # the invitation
    job = json.loads(next(line for line in out.stdout.splitlines() if '"bulk-invites/demo/march.csv"' in line))
    [run] = [j for j in job["items"] if j["source"] == "bulk-invites/demo/march.csv"]
    assert run["status"] == "done" and run["counts"]["invited"] == 2, run
    assert re.search(r"^demo\s+Demo Plumbing", out.stdout, re.M)  # make console ARGS="tenant list"
    invitation = [json.loads(p.read_text()) for p in (stack["local_dir"] / "outbox").glob("*.json")]
    links = [link for m in invitation if m["to"] == "linh.nguyen@example.com" for link in m["links"]]
    assert links and all(link.startswith(stack["api"] + "/register?token=") for link in links)


def test_the_console_runs_against_the_stack_and_its_links_open_the_stacks_port(stack):
    tenant_id = "newbie-" + uuid.uuid4().hex[:6]
    email = f"boss@{tenant_id}.example"
    out = subprocess.run(["make", "console", f"ARGS=tenant create {tenant_id} --name 'Newbie Heating' "
                          f"--admin-email {email}"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env=fresh_shell_env(**stack["ports"]))
    assert out.returncode == 0, out.stderr
    assert f"created tenant {tenant_id} (Newbie Heating)" in out.stdout

    def delivered():
        return [json.loads(p.read_text()) for p in (stack["local_dir"] / "outbox").glob("*.json")
                if json.loads(p.read_text())["to"] == email]
    [message] = wait_for(delivered, 20) or [None]
    assert message, stack["log"].read_text()[-2000:]
    assert message["links"] and message["links"][0].startswith(stack["api"] + "/staff/accept-invite?token=")
    assert ":8000" not in message["body"]


def test_make_console_and_make_wait_without_a_stack_say_so_in_one_line(tmp_path):
    env = fresh_shell_env(PORTAL_LOCAL_DIR=str(tmp_path))
    out = subprocess.run(["make", "-s", "console", "ARGS=tenant list"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0
    assert out.stderr.splitlines()[0].startswith("portal-access: error: no local stack is running")
    out = subprocess.run(["make", "-s", "wait", "WAIT_SECONDS=1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0 and "no local stack answered within 1 s" in out.stderr


# --- stage local never reaches AWS -------------------------------------------------------------------------------

def test_stage_local_refuses_without_a_local_endpoint(monkeypatch):
    from chalicelib.core import config
    monkeypatch.setenv("PORTAL_STAGE", "local")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(config.LocalEndpointMissing) as refused:
        config.require_local_endpoint()
    assert "AWS_ENDPOINT_URL is not set" in str(refused.value) and "\n" not in str(refused.value)
    for endpoint in ("https://dynamodb.us-east-1.amazonaws.com", "https://sqs.cn-north-1.amazonaws.com.cn"):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        assert endpoint in config.local_endpoint_problem()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert config.local_endpoint_problem() is None
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")
    assert "AWS_ENDPOINT_URL_DYNAMODB" in config.local_endpoint_problem()
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" in config.local_endpoint_problem()
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("PORTAL_STAGE", "prod")
    assert config.local_endpoint_problem() is None  # a deployed stage uses AWS, as it should


def test_the_console_on_stage_local_without_an_endpoint_refuses_and_sends_nothing(tmp_path):
    """Before: `portal-access tenant list` with keys and a region but no AWS_ENDPOINT_URL went to
    https://dynamodb.us-east-1.amazonaws.com/. Any attempt would reach the proxy this test listens as."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(8)
        proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        env = fresh_shell_env(AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE", AWS_SECRET_ACCESS_KEY="x" * 40,
                              AWS_REGION="us-east-1", HTTPS_PROXY=proxy_url, HTTP_PROXY=proxy_url,
                              AWS_MAX_ATTEMPTS="1", AWS_METADATA_SERVICE_NUM_ATTEMPTS="0")
        for argv in ([str(ROOT / ".venv" / "bin" / "portal-access"), "tenant", "list"],
                     [sys.executable, "-m", "ops.local.dispatcher"]):
            out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
            assert out.returncode in (1, 2), out
            [line] = out.stderr.splitlines() or out.stdout.splitlines()
            assert "stage local runs only against a local AWS endpoint and AWS_ENDPOINT_URL is not set" in line
        proxy.setblocking(False)
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nobody tried to reach AWS


def test_links_follow_the_api_port_unless_the_base_url_is_set(monkeypatch):
    from chalicelib.core import config
    monkeypatch.delenv("PORTAL_PUBLIC_BASE_URL")
    monkeypatch.setenv("PORTAL_API_PORT", "8123")
    assert config.public_base_url() == "http://127.0.0.1:8123"
    monkeypatch.delenv("PORTAL_API_PORT")
    assert config.public_base_url() == "http://127.0.0.1:8000"
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", "https://portal.example/")
    monkeypatch.setenv("PORTAL_API_PORT", "8123")
    assert config.public_base_url() == "https://portal.example"


# --- the README and docs stand alone and match the code -----------------------------------------------------------

def test_the_readme_and_docs_stand_alone():
    docs = {p: p.read_text() for p in (ROOT / "docs").glob("*.md")}
    for path, text in {ROOT / "README.md": README, **docs}.items():
        assert "../shared" not in text and "DESIGN.md" not in text, path
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # every relative link resolves
            assert (path.parent / target).exists(), (path, target)
    product = (ROOT / "docs" / "product.md").read_text()
    assert "(docs/product.md)" in README
    for n in range(1, 22):  # the rules code comments cite as "DESIGN rule N"
        assert re.search(rf"^ *{n}\. ", product, re.M), n


def test_the_settings_table_names_every_setting_of_the_local_stack():
    table = section("Two commands")
    for variable in ("PORTAL_API_PORT", "PORTAL_AWS_PORT", "PORTAL_PUBLIC_BASE_URL", "PORTAL_LOCAL_DIR",
                     "PORTAL_UPLOADS_BUCKET", "PORTAL_DEMO_ADMIN_PASSWORD", "PORTAL_DEMO_PARTNER_SECRET",
                     "PORTAL_SCHEDULE_SECONDS"):
        assert re.search(rf"^\| `{variable}` \|", table, re.M), variable
    console = section("Operator console")
    assert ".venv/bin/portal-access" in console and 'make console ARGS="' in console
    for variable in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "PORTAL_STAGE"):
        assert variable in console, variable


def test_the_readme_counts_the_operations_of_the_openapi_document(app):
    from chalicelib.web import openapi
    document = openapi.document()
    operations = sum(1 for item in document["paths"].values() for method in item
                     if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"))
    stated = re.findall(r"operation of `/v1/openapi\.json` \(all (\d+)\)", README)
    assert stated == [str(operations)]


def test_the_layout_has_a_line_per_folder_naming_every_module_in_it():
    """One line per folder (issue 15), and every module named on its folder's line, so the tree cannot drift."""
    layout = re.search(r"```\n(app\.py.*?)```", section("Layout"), re.S).group(1)
    lines = {line.split()[0]: line for line in layout.splitlines() if line.strip()}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        assert folder in lines, folder
        assert re.search(rf"\b{re.escape(path.stem)}\b", lines[folder]), (folder, path.stem)


def test_gitignore_ignores_no_tracked_file():
    out = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout == ""


# --- the messages ---------------------------------------------------------------------------------------------------

def test_the_expiry_warning_opens_the_staff_change_password_page_of_the_business(app, http, tenant):
    from staff_helpers import staff_member

    from chalicelib.core.due import PASSWORD_MAX_AGE_SECONDS
    from chalicelib.flows import expiry
    person, _ = staff_member(tenant, kind="employee")
    assert expiry.warn_password_expiry(person, person.password_set_at + PASSWORD_MAX_AGE_SECONDS - 13 * 86400)
    drain(app)
    [warning] = [m for m in outbox_for(person.email) if "expires" in m["subject"]]
    [link, sign_in] = warning["links"]
    url = urlparse(link)
    assert url.path == "/staff/change-password" and parse_qs(url.query) == {"tenant_id": [tenant.id]}
    assert link in warning["body"] and link in warning["html"]
    # the other way in is the business's staff sign-in, never the customers' /sign-in
    assert urlparse(sign_in).path == "/staff/sign-in" and "/sign-in?" not in warning["body"].replace(sign_in, "")
    page = http.client.http.get(f"{url.path}?{url.query}")  # the page the link opens answers, for that business
    assert page.status_code == 200 and b"Test Plumbing" in page.body and b"change your password" in page.body


def invite(app, http, tenant, access):
    t = tenant.admin_token
    email = f"{access}.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Harper Household", "emails": [email]}, token=t)[1]
    status, body = http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email,
                                                        "access": access}, token=t)
    assert status == 202, body
    drain(app)
    [message] = outbox_for(email)
    return message


def test_the_invitation_says_what_the_access_gives(app, http, tenant):
    billing = invite(app, http, tenant, "billing")
    assert "service history, upcoming visits, invoices and payments" in billing["body"]
    assert "invoices and payments" in billing["html"]
    non_billing = invite(app, http, tenant, "non_billing")
    for text in (non_billing["body"], non_billing["html"]):
        assert "service history and upcoming visits" in text and "invoices are not part of your access" in text
        assert "invoices and payments" not in text and "upcoming visits and invoices" not in text


def test_the_sign_up_email_answers_the_request(app, http, tenant):
    t = tenant.admin_token
    email = f"selfie.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    http.post("/v1/customers", {"name": "Selfie", "emails": [email]}, token=t)
    http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": []}, token=t)
    assert http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})[0] == 202
    drain(app)
    [message] = outbox_for(email)
    assert message["subject"] == "Your Test Plumbing customer portal link"
    assert "invite" not in message["subject"].lower() and "You asked to sign up" in message["body"]
    assert "invoices and payments" in message["body"]  # an email on the customer record: billing
    assert message["links"][0].startswith("http://portal.test/register?token=")
