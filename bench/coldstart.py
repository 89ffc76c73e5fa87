"""Cold start: importing `app` in a fresh interpreter, as Lambda does before the first event (median of 10),
against a baseline that loads eagerly what the app keeps lazy: Powertools Tracer/Logger/Metrics, the X-Ray SDK
and the boto3 clients the app uses. Wall time is the bar; CPU time of the import is reported beside it because
it does not grow when other processes share the cores.

With bytecode (the .pyc files infra/bytecode.py puts in the Lambda package) and without (what the package held
before: every cold start compiled every module it imports; simulated with an empty PYTHONPYCACHEPREFIX), and
`python -X importtime`'s self time summed by package: where the import time goes."""
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile

from bench.common import ROOT

TIMED = "import time; t, c = time.perf_counter(), time.process_time()\n{body}\n" \
        "print(time.perf_counter() - t, time.process_time() - c)"
APP = TIMED.format(body="import app")
EAGER = TIMED.format(body="""import aws_xray_sdk.core, boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
Tracer(); Logger(); Metrics()
for service in ("dynamodb", "s3", "sqs", "ses", "sns", "secretsmanager"):
    boto3.client(service)
import app""")
# What a function's first event imports on top of `app` (chalicelib/web/lazy.py keeps the flows out of `import app`):
# the API's first staff sign-in (its route's flow, the models, argon2, PyJWT) and the interactive send lane's handler.
FIRST_SIGN_IN = TIMED.format(body="import app\nimport chalicelib.flows.staff.staff_signin, "
                                  "chalicelib.core.security.passwords, jwt, argon2")
FIRST_SEND = TIMED.format(body="import app\nimport chalicelib.events.sender")
# The libraries the stack chose, alone: what no change to this project's modules can take away.
LIBRARIES = TIMED.format(body="import chalicelib, chalice, boto3, pynamodb.models, pydantic, jwt, argon2, "
                              "aws_lambda_powertools.logging")


def _env(**extra: str) -> dict:
    # The environment of a Lambda in AWS: no endpoint override; tracing off as on the local stage.
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PYTHONDONTWRITEBYTECODE")}
    return {"AWS_DEFAULT_REGION": "us-east-1", **env, **extra}


def _runs(code: str, n: int, **env: str) -> dict:
    wall, cpu = [], []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**env), capture_output=True,
                             text=True, check=True).stdout.split()
        wall.append(float(out[-2]) * 1000)
        cpu.append(float(out[-1]) * 1000)
    return {"ms": statistics.median(wall), "cpu_ms": statistics.median(cpu), "runs": [round(w) for w in wall]}


def by_package() -> list[tuple[str, float]]:
    """`-X importtime` self times (ms) summed by top-level package (this project's by its second level)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True).stderr
    totals: collections.Counter = collections.Counter()
    for self_us, name in re.findall(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", err):
        parts = name.split(".")
        totals[".".join(parts[:2]) if parts[0] == "chalicelib" else parts[0]] += int(self_us) / 1000
    return totals.most_common()


def run(log, n: int = 10) -> dict:
    subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=_env(), check=True)  # .pyc written
    app, eager, libraries = _runs(APP, n), _runs(EAGER, n), _runs(LIBRARIES, n)
    sign_in, send = _runs(FIRST_SIGN_IN, n), _runs(FIRST_SEND, n)
    with tempfile.TemporaryDirectory() as empty:
        source_only = _runs(APP, max(3, n // 2), PYTHONPYCACHEPREFIX=empty, PYTHONDONTWRITEBYTECODE="1")
    log(f"cold start: import app {app['ms']:.0f} ms (CPU {app['cpu_ms']:.0f} ms), eager baseline {eager['ms']:.0f} ms,"
        f" the libraries alone {libraries['ms']:.0f} ms, without bytecode {source_only['ms']:.0f} ms;"
        f" with a first sign-in's imports {sign_in['ms']:.0f} ms, with the sender's {send['ms']:.0f} ms")
    return {"app_ms": app["ms"], "app_cpu_ms": app["cpu_ms"], "app_runs": app["runs"], "eager_ms": eager["ms"],
            "eager_cpu_ms": eager["cpu_ms"], "eager_runs": eager["runs"], "ratio": app["ms"] / eager["ms"],
            "libraries_ms": libraries["ms"], "libraries_cpu_ms": libraries["cpu_ms"],
            "libraries_runs": libraries["runs"], "source_only_ms": source_only["ms"],
            "source_only_cpu_ms": source_only["cpu_ms"], "source_only_runs": source_only["runs"],
            "sign_in_ms": sign_in["ms"], "sign_in_cpu_ms": sign_in["cpu_ms"], "sign_in_runs": sign_in["runs"],
            "send_ms": send["ms"], "send_cpu_ms": send["cpu_ms"], "send_runs": send["runs"],
            "by_package": by_package()}
