"""`make bench` (python -m bench [--bulk-sizes 10000,100000,500000] [--only SECTION]): every section in one run on
this machine, then BENCHMARKS.md at the project root, docs/bench-bulk.png and the raw figures in
.local/bench.json.

One moto server (a subprocess: its CPU and memory stay out of the measured processes' figures) holds every
resource of infra/template.json (ops.local.resources.create_all) and a signing key. Sections run one
after the other so they never compete for the cores; only the HTTP section starts its own stack (`make run`).
`--only SECTION` measures one section again and merges it into the last run's figures (bulk sizes merge by
size: `--only bulk --bulk-sizes 1000000` adds a 1,000,000-row file); on a fresh clone it measures that section alone."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

# 500,000 rows is Cognito's import-job limit: about 12 minutes of the run here (setup included)
SIZES = (10_000, 100_000, 500_000)
SECTIONS = ("cold_start", "in_process", "send", "bulk", "console", "sending", "http", "bulk_continuation",
            "bulk_overlap")
# measured only with --only (a long file across many invocations; the side-by-side runs of the bulk handler)
ON_DEMAND = ("bulk_continuation", "bulk_overlap")
SAVED = common.ROOT / ".local" / "bench.json"


def log(message: str) -> None:
    # sys.__stdout__: sections silence the outbox's line per message with redirect_stdout, not the bench's log
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.__stdout__, flush=True)


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="minutes")


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    return {"cores": os.cpu_count(), "ram_gb": mem_kb / 1024 / 1024, "cpu": model,
            "python": platform.python_version(), "os": platform.platform(), "load_before": os.getloadavg()}


def aws() -> subprocess.Popen:
    """The moto server, every resource of infra/template.json, a signing key."""
    port = common.free_port()
    common.set_environment(port, tempfile.mkdtemp(prefix="portal-bench-outbox-"))
    (common.ROOT / ".local").mkdir(exist_ok=True)
    moto = common.start_moto(port, common.ROOT / ".local" / "bench-moto.log")
    log(f"moto server (subprocess, pid {moto.pid}) on port {port}; moto log .local/bench-moto.log")
    from ops.local.resources import create_all
    from chalicelib.core.security import keys
    create_all(stage="local", uploads_bucket=common.BUCKET)
    keys.ensure_signing_key()
    return moto


def stop(proc: subprocess.Popen) -> None:
    """moto can take long to exit with a million items in memory: SIGTERM, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(section: str, results: dict, sizes: list[int], args=None) -> None:
    from bench import bulk, bulk_continuation, coldstart, console, inproc, sendlanes, sendq
    if section == "bulk_overlap":
        results["bulk_overlap"] = [bulk.overlap_side_by_side(args.overlap_rows, log, ms, args.baseline_rev)
                                   for ms in args.aws_latency_ms]
    elif section == "bulk_continuation":
        results["bulk_continuation"] = bulk_continuation.run(args.continuation_rows, args.budget, log)
    elif section == "console":
        results["console"] = console.run(log)
    elif section == "cold_start":
        results["cold_start"] = coldstart.run(log)
    elif section == "in_process":
        results["in_process"] = inproc.run(log)
    elif section == "send":
        results["send"] = [sendq.run(14, 140, log), sendq.run(500, 2000, log)]
    elif section == "sending":  # last before http: its drainer is stopped, its backlog left behind
        results["sending"] = sendlanes.run(log, int(os.environ.get("PORTAL_BENCH_BACKLOG", "20000")))
    elif section == "bulk":
        # the naive baseline runs with the smallest file unless a size kept from an earlier run already has it
        has_baseline = any("naive" in b and b["rows"] not in sizes for b in results.get("bulk", []))
        for rows in sizes:
            b = bulk.run(rows, with_naive=not has_baseline and rows == min(sizes), log=log)
            log(f"bulk {rows:,} rows: {rows / b['handler']['seconds']:,.0f} rows/s, peak RSS {b['peak_rss_mb']:.0f} MB")
            if "total_seconds" in results:  # merged into an earlier full run
                b["separate_run"] = now()
            results["bulk"] = sorted([x for x in results.get("bulk", []) if x["rows"] != rows] + [b],
                                     key=lambda x: x["rows"])
        results["bulk_connection_ms"] = bulk.transaction_connection_ms()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--bulk-sizes", default=",".join(map(str, SIZES)),
                        help="bulk file sizes in rows, comma-separated (default %(default)s)")
    parser.add_argument("--only", choices=SECTIONS, help="measure this section again, merged into the last run")
    parser.add_argument("--continuation-rows", type=int, default=2_000_000,
                        help="bulk_continuation: rows of the file (default %(default)s)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="bulk_continuation: seconds per invocation before it hands over (default %(default)s)")
    parser.add_argument("--overlap-rows", type=int, default=20_000,
                        help="bulk_overlap: rows of the file run sequential and overlapped (default %(default)s)")
    parser.add_argument("--aws-latency-ms", type=lambda v: [float(x) for x in v.split(",")], default=[0.0],
                        help="bulk_overlap: added wait per AWS call, comma-separated runs (default 0)")
    parser.add_argument("--baseline-rev",
                        help="bulk_overlap: also run this git revision's handler first (e.g. the code before issue 21)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.bulk_sizes.split(",") if s]
    started = time.monotonic()
    if args.only and SAVED.exists():  # merged into the last run's figures
        results = json.loads(SAVED.read_text())
        results.setdefault("later", []).append(f"{args.only} on {now()}")
    else:  # a full run, or one section on a fresh clone: BENCHMARKS.md then holds that section alone
        results = {"machine": machine(), "date": now()}
    sections = [args.only] if args.only else [s for s in SECTIONS if s not in ON_DEMAND]
    moto = aws() if set(sections) - {"http"} else None
    try:
        for section in sections:
            if section != "http":
                measure(section, results, sizes, args)
                SAVED.with_suffix(".partial.json").write_text(json.dumps(results, indent=2, default=str))
    finally:
        if moto:
            stop(moto)
    if "http" in sections:  # its own stack, with moto's port free again
        from bench import httpbench
        results["http"] = httpbench.run(log)
    if not args.only:
        results["machine"]["load_after"] = os.getloadavg()
        results["total_seconds"] = time.monotonic() - started
    from bench import report
    report.write(results)
    log(f"done in {(time.monotonic() - started) / 60:.1f} min: BENCHMARKS.md, docs/bench-bulk.png, .local/bench.json")
    return 0
