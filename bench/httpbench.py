"""The API over HTTP: `make run` (the local stack) on free ports, a load tool in a second process on loopback,
10 s and 4 connections per endpoint. wrk when installed (Debian: apt-get install wrk), else bench/load.py.
chalice local is a development server: one Python process (a thread per connection, one GIL), in front of a
moto server on the same 2 cores; the figures say what this stack sustains, not what API Gateway + Lambda does."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench.common import ROOT, free_port

ADMIN_PASSWORD = "Bench-Admin-Pass-42"
PORTAL_PASSWORD = "Bench-Portal-Pass-42"
SECONDS, CONNECTIONS = 10, 4
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers)
    with _direct.open(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def load(url: str, body: dict | None = None, token: str | None = None) -> dict:
    """{"rps", "p50_ms", "p99_ms", "errors", "tool"} from one time-bounded run."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    if not shutil.which("wrk"):
        args = [sys.executable, "-m", "bench.load", url, str(SECONDS), str(CONNECTIONS), json.dumps(headers),
                json.dumps(body) if body else ""]
        return json.loads(subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
        if body:
            lines += ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--latency", "-s",
                          script.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)

    def ms(label):
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": ms("50%"),
            "p99_ms": ms("99%"), "errors": int(errors.group(1)) if errors else 0, "tool": "wrk 4 connections"}


def run(log) -> dict:
    api_port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTAL_"))}
    env.update(PORTAL_API_PORT=str(api_port), PORTAL_AWS_PORT=str(aws_port), PORTAL_DEMO_ADMIN_PASSWORD=ADMIN_PASSWORD)
    api = f"http://127.0.0.1:{api_port}"
    stack_log = open(ROOT / ".local" / "bench-stack.log", "w")
    stack = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=stack_log,
                             stderr=subprocess.STDOUT, start_new_session=True)  # its own group: one killpg stops all
    try:
        started = time.monotonic()
        while "is ready" not in (ROOT / ".local" / "bench-stack.log").read_text():
            if stack.poll() is not None or time.monotonic() - started > 180:
                raise RuntimeError("the local stack did not start; see .local/bench-stack.log")
            time.sleep(0.5)
        log(f"local stack ready in {time.monotonic() - started:.1f} s")
        admin = call(f"{api}/v1/staff/sign-in", {"tenant_id": "demo", "username": "admin@demo.example",
                                                 "password": ADMIN_PASSWORD})["access_token"]
        customers = call(f"{api}/v1/customers", token=admin)["items"]
        nguyen = next(c for c in customers if c["name"] == "Nguyen Family")
        email = nguyen["emails"][0]
        call(f"{api}/v1/portal/invitations", {"customer_id": nguyen["customer_id"], "email": email}, admin)
        token = _registration_token(email, since=time.time())
        portal = call(f"{api}/v1/portal/register", {"token": token, "password": PORTAL_PASSWORD})["access_token"]
        out = {"me": load(f"{api}/v1/portal/me", token=portal)}
        log(f"HTTP GET /v1/portal/me: {out['me']['rps']:.0f} req/s")
        out["portal_sign_in"] = load(f"{api}/v1/portal/sign-in", {"tenant_id": "demo", "email": email,
                                                                  "password": PORTAL_PASSWORD})
        out["staff_sign_in"] = load(f"{api}/v1/staff/sign-in", {"tenant_id": "demo", "username": "admin@demo.example",
                                                                "password": ADMIN_PASSWORD})
        out["ready_seconds"] = time.monotonic() - started
        return out
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        stack_log.close()


def _registration_token(email: str, since: float) -> str:
    """The dispatcher delivers the invitation to .local/outbox/ within a few seconds."""
    outbox = ROOT / ".local" / "outbox"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.json"), reverse=True):
            if int(path.name.split("-")[0]) < since * 1e9:
                break
            message = json.loads(path.read_text())
            links = [link for link in message["links"] if "/register?token=" in link]
            if message["to"] == email and links:
                return links[0].split("token=", 1)[1]
        time.sleep(0.5)
    raise RuntimeError("the invitation did not reach .local/outbox/")
