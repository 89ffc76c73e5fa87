"""Cold start: importing `app` in a fresh interpreter, as Lambda does before the first event (median of 10),
against a baseline that loads eagerly what the app keeps lazy: Powertools Tracer/Logger/Metrics, the X-Ray SDK
and the boto3 clients the app uses. Wall time is the bar; CPU time of the import is reported beside it because
it does not grow when other processes share the cores."""
import os
import statistics
import subprocess
import sys

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


def _runs(code: str, n: int) -> dict:
    # The environment of a Lambda in AWS: no endpoint override; tracing off as on the local stage.
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    wall, cpu = [], []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        wall.append(float(out[-2]) * 1000)
        cpu.append(float(out[-1]) * 1000)
    return {"ms": statistics.median(wall), "cpu_ms": statistics.median(cpu), "runs": [round(w) for w in wall]}


def run(log, n: int = 10) -> dict:
    subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, check=True)  # .pyc files written, not timed
    app, eager = _runs(APP, n), _runs(EAGER, n)
    log(f"cold start: import app {app['ms']:.0f} ms (CPU {app['cpu_ms']:.0f} ms), eager baseline {eager['ms']:.0f} ms")
    return {"app_ms": app["ms"], "app_cpu_ms": app["cpu_ms"], "app_runs": app["runs"], "eager_ms": eager["ms"],
            "eager_cpu_ms": eager["cpu_ms"], "eager_runs": eager["runs"], "ratio": app["ms"] / eager["ms"]}
