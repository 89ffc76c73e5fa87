"""`make run`: the whole product on this machine, with no AWS account.

Starts a moto server (the AWS endpoint), creates every resource from infra/template.json, makes a JWT signing
key, seeds the demo tenant, then starts the API (`chalice local`) and the dispatcher (SQS + schedule → the
real handlers). Ctrl-C or SIGTERM stops all of it; if any part dies, everything stops and the exit code is 1.

Environment: PORTAL_AWS_PORT (4566), PORTAL_API_PORT (8000), PORTAL_UPLOADS_BUCKET, PORTAL_DEMO_ADMIN_PASSWORD
(else one is generated and printed), PORTAL_DEMO_PARTNER_SECRET (the demo partner's client secret, else generated
and printed), PORTAL_SCHEDULE_SECONDS (60, read by the dispatcher), PORTAL_LOCAL_DIR (.local: moto.log, outbox/,
and stack.json, written once the API answers and removed at the stop: `make wait` and `make console` read it).
"""
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BUCKET = "portal-access-local-uploads"
STOP_GRACE_S = 10  # acceptance SIGKILLs after 20 s; stay well inside that
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stop(Exception):
    """A signal asked the stack to stop."""


class StartupError(Exception):
    pass


def _on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def _child_setup():
    """Runs in each child before exec. Ctrl-C reaches the whole foreground process group: children ignore it
    so the stack stops them in order instead of each printing a KeyboardInterrupt. If the stack itself dies
    hard (SIGKILL), Linux sends the children SIGTERM (PR_SET_PDEATHSIG) so nothing is left listening."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the process group still reaches them
        pass


def spawn(args: list[str], log=None) -> subprocess.Popen:
    # Same process group as the stack (no new session): whoever kills the group of `make run` kills all.
    return subprocess.Popen(args, cwd=PROJECT_ROOT, preexec_fn=_child_setup,
                            stdout=log, stderr=subprocess.STDOUT if log else None)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes via a proxy


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    """Wait until `url` gives any HTTP answer; fail early if the process serving it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartupError(f"{what} exited with code {proc.returncode} while starting")
        try:
            _no_proxy.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise StartupError(f"{what} did not answer {url} within {timeout_s:.0f} s")


def state_dir() -> Path:
    """moto.log, the outbox and stack.json: .local/ unless PORTAL_LOCAL_DIR names another place (`make fuzz`
    uses its own)."""
    from ops.local import state
    return state.local_dir()


def admin_password() -> tuple[str, bool]:
    """(password, generated?) The generated one meets the password policy: 10+ chars, upper, lower, digit."""
    if os.environ.get("PORTAL_DEMO_ADMIN_PASSWORD"):
        return os.environ["PORTAL_DEMO_ADMIN_PASSWORD"], False
    while True:
        pw = secrets.token_urlsafe(12)  # 16 characters
        if any(c.isupper() for c in pw) and any(c.islower() for c in pw) and any(c.isdigit() for c in pw):
            return pw, True


def set_environment(aws_port: int, api_port: int, bucket: str, outbox: Path) -> None:
    """For this process and every child (they inherit os.environ)."""
    # Nothing may reach a real AWS account: drop whatever could send a client elsewhere than moto.
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL_") or key in (
                "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
            del os.environ[key]
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "PORTAL_STAGE": "local", "PORTAL_UPLOADS_BUCKET": bucket, "PORTAL_OUTBOX_DIR": str(outbox),
        "PORTAL_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
    })
    # Defaults only: a developer may turn tracing or metrics on; unbuffered keeps the children's logs in order.
    for key, value in (("POWERTOOLS_TRACE_DISABLED", "true"), ("POWERTOOLS_METRICS_DISABLED", "true"),
                       ("PYTHONUNBUFFERED", "1")):
        os.environ.setdefault(key, value)


def prepare(bucket: str, password: str) -> dict:
    """Resources, signing key, demo tenant: imported only now so boto3/PynamoDB see the moto endpoint."""
    from chalicelib.core.security import keys
    from ops import seed
    from ops.local import resources
    resources.create_all(stage="local", uploads_bucket=bucket)
    keys.ensure_signing_key()
    demo = seed.seed_demo(password)
    demo["partner"] = seed.seed_partner_portals(os.environ.get("PORTAL_DEMO_PARTNER_SECRET") or None)
    demo["apps"] = seed.seed_apps()
    return demo


def banner(api_url: str, demo: dict, password: str, generated: bool, took_s: float) -> str:
    outbox, aws = os.environ["PORTAL_OUTBOX_DIR"], os.environ["AWS_ENDPOINT_URL"]
    user, tenant = demo["admin_username"], demo["tenant_id"]
    if generated:
        pw_line = f"  admin password {password}   (generated; set PORTAL_DEMO_ADMIN_PASSWORD to choose one)"
        export = f"  export PORTAL_DEMO_ADMIN_PASSWORD='{password}'\n"
    else:
        pw_line, export = "  admin password from $PORTAL_DEMO_ADMIN_PASSWORD", ""
    partner = demo.get("partner") or {}  # a secret from the environment is never printed: only a generated one
    partner_secret = (f"{partner['secret']}   (generated; set PORTAL_DEMO_PARTNER_SECRET to choose one)"
                      if partner.get("secret") else "from $PORTAL_DEMO_PARTNER_SECRET")
    apps = demo.get("apps") or {}
    sign_in = (f'{{"tenant_id": "{tenant}", "username": "{user}", '
               f'"password": "\'"$PORTAL_DEMO_ADMIN_PASSWORD"\'"}}')
    return f"""
portal-access local stack is ready (started in {took_s:.1f} s)
  API            {api_url}   (OpenAPI at {api_url}/v1/openapi.json)
  AWS endpoint   {aws}   (moto; its log: {state_dir() / "moto.log"})
  outbox         {outbox}   (every email and SMS, one JSON file each)
  demo tenant    {tenant}
  admin          {user}
{pw_line}
  partner        client id {partner.get("client_id")}, secret {partner_secret}   (POST /v1/partner/token)
  portal app     client id {apps.get("portal")}   (Customer Portal: public, PKCE; redirect URI http://127.0.0.1:8400/callback)
  staff app      client id {apps.get("staff")}   (Technician App: public, PKCE; redirect URI com.example.fieldtech:/oauth2redirect)
Sign in and create a customer:
{export}  TOKEN=$(curl -s -X POST {api_url}/v1/staff/sign-in -H 'Content-Type: application/json' \\
      -d '{sign_in}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST {api_url}/v1/customers -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
      -d '{{"name": "Jane Homeowner", "emails": ["jane@example.com"]}}'
Ctrl-C stops everything.
"""


def watch(children: dict[str, subprocess.Popen]) -> int:
    """Until a signal (→ Stop): any child exiting stops the stack."""
    while True:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"local stack: {name} exited unexpectedly (code {proc.returncode}); stopping everything",
                      file=sys.stderr, flush=True)
                return 1
        time.sleep(0.5)


def stop_all(children: dict[str, subprocess.Popen]) -> None:
    """API and dispatcher first (they talk to moto), then moto; SIGKILL whatever outlives the grace period."""
    for names in (("api", "dispatcher"), ("moto",)):
        procs = [children[n] for n in names if n in children]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    stage = os.environ.get("PORTAL_STAGE") or "local"
    if stage != "local":
        print(f"refusing to start: the local stack runs only with PORTAL_STAGE=local, not {stage!r}",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    aws_port = int(os.environ.get("PORTAL_AWS_PORT", "4566"))
    api_port = int(os.environ.get("PORTAL_API_PORT", "8000"))
    for port, var in ((aws_port, "PORTAL_AWS_PORT"), (api_port, "PORTAL_API_PORT")):
        if port_in_use(port):  # else we could mistake someone else's server for ours
            print(f"port {port} is already in use: stop what listens there or set {var}", file=sys.stderr)
            return 1
    local_dir = state_dir()
    (local_dir / "outbox").mkdir(parents=True, exist_ok=True)
    bucket = os.environ.get("PORTAL_UPLOADS_BUCKET") or DEFAULT_BUCKET
    set_environment(aws_port, api_port, bucket, local_dir / "outbox")
    api_url = os.environ["PORTAL_PUBLIC_BASE_URL"]
    password, generated = admin_password()
    from chalicelib.core.security import passwords
    if failures := passwords.policy_failures(password):
        print(f"PORTAL_DEMO_ADMIN_PASSWORD breaks the password policy ({failures[0]}): choose another",
              file=sys.stderr)
        return 2

    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # respect nohup and background jobs
            signal.signal(sig, _on_signal)
    children: dict[str, subprocess.Popen] = {}
    rc = 0
    try:
        with open(local_dir / "moto.log", "w") as moto_log:  # moto logs every request: keep it out of sight
            children["moto"] = spawn([sys.executable, "-m", "ops.local.moto_server",
                                      "-H", "127.0.0.1", "-p", str(aws_port)],
                                     log=moto_log)
        wait_http(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/", children["moto"], "the moto server")
        demo = prepare(bucket, password)
        # --no-autoreload: chalice's reloader re-executes sys.argv, which fails under `python -m`, and it
        # would reload the API but not the dispatcher. After changing code, restart the stack.
        children["api"] = spawn([sys.executable, "-m", "ops.local.chalice_local", "local", "--stage", "local",
                                 "--host", "127.0.0.1", "--port", str(api_port), "--no-autoreload"])
        children["dispatcher"] = spawn([sys.executable, "-m", "ops.local.dispatcher"])
        wait_http(api_url + "/v1/health", children["api"], "the API (chalice local)")
        print(banner(api_url, demo, password, generated, time.monotonic() - started), flush=True)
        from ops.local import state
        state.write({"pid": os.getpid(), "api_url": api_url, "public_base_url": os.environ["PORTAL_PUBLIC_BASE_URL"],
                     "aws_endpoint": os.environ["AWS_ENDPOINT_URL"], "region": os.environ["AWS_REGION"],
                     "bucket": bucket, "outbox": os.environ["PORTAL_OUTBOX_DIR"],
                     "moto_log": str(local_dir / "moto.log"), "started_at": int(time.time())})
        rc = watch(children)
    except Stop as stop:
        print(f"\nlocal stack: {stop}: stopping", flush=True)
    except StartupError as exc:
        print(f"local stack: {exc}; see {local_dir / 'moto.log'} and the output above", file=sys.stderr)
        rc = 1
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        from ops.local import state
        state.clear(os.getpid())  # first: `make console` must not find a stack that is going away
        stop_all(children)
    return rc


if __name__ == "__main__":
    sys.exit(main())
