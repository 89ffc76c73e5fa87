"""BENCHMARKS.md (a table per section, the machine, the date), docs/bench-bulk.png, and the raw figures in
.local/bench.json."""
import json
import re

from bench.common import ROOT

LAMBDA_SECONDS = 15 * 60


def _ok(passed: bool) -> str:
    return "meets" if passed else "**misses**"


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def plot(bulk: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [b["rows"] for b in bulk]
    fig, left = plt.subplots(figsize=(7, 4))
    left.plot(rows, [b["rows"] / b["handler"]["seconds"] for b in bulk], "o-", color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("rows in the CSV")
    left.set_ylabel("rows per second", color="tab:blue")
    left.set_ylim(bottom=0)
    right = left.twinx()
    right.plot(rows, [b["peak_rss_mb"] for b in bulk], "s--", color="tab:red")
    right.axhline(256, color="tab:red", linewidth=0.8, linestyle=":")
    right.annotate("256 MB bar", (rows[0], 256), xytext=(0, 3), textcoords="offset points", color="tab:red",
                   fontsize=8)
    right.set_ylabel("peak RSS of the handler process (MB)", color="tab:red")
    right.set_ylim(0, max(300, max(b["peak_rss_mb"] for b in bulk) * 1.2))
    left.set_title("Bulk invitation handler against moto: throughput and peak memory")
    fig.tight_layout()
    (ROOT / "docs").mkdir(exist_ok=True)
    fig.savefig(ROOT / "docs" / "bench-bulk.png", dpi=120)


def write(r: dict) -> None:
    (ROOT / ".local").mkdir(exist_ok=True)
    (ROOT / ".local" / "bench.json").write_text(json.dumps(r, indent=2, default=str))
    out = _header(r)
    # A section this run did not measure and has no figures of (`make bench ONLY=<section>` on a fresh clone, where
    # .local/bench.json is not there) keeps its text from the BENCHMARKS.md in the tree, which says when it ran.
    earlier = _sections(ROOT / "BENCHMARKS.md")
    for key, lines in (("cold_start", _cold_start), ("in_process", _in_process), ("bulk", _bulk), ("send", _send),
                       ("sending", _sending), ("bulk_continuation", _bulk_continuation),
                       ("bulk_overlap", _bulk_overlap), ("http", _http), ("console", _console)):
        if key in r:
            out += lines(r)
        elif key in earlier:
            out += [earlier[key].rstrip("\n"), ""]  # its trailing blank lines would pile up at each rewrite
    out += ["Raw figures of this run: `.local/bench.json` (not committed).", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(out))
    if "bulk" in r:
        plot(r["bulk"])


HEADINGS = {"cold_start": "## Cold start", "in_process": "## Sign-in and flows (in-process)",
            "bulk": "## Bulk invitations", "send": "## Send queue", "http": "## API over HTTP (local stack)",
            "console": "## Admin console pages (in-process)", "sending": "## Sending lanes",
            "bulk_continuation": "## Bulk run across invocations", "bulk_overlap": "## Bulk chunks overlapped"}


def _sections(path) -> dict[str, str]:
    """The sections of an earlier BENCHMARKS.md by key, each with the date it was written."""
    if not path.exists():
        return {}
    text = path.read_text()
    written = re.search(r"Written by `make bench` on (\S+?);", text)
    note = f"*(From the run of {written.group(1)}: not measured again since.)*" if written else ""
    blocks = {}
    for block in re.split(r"\n(?=## )", text):
        for key, heading in HEADINGS.items():
            if block.startswith(heading + "\n"):
                body = block.rstrip("\n").removesuffix("Raw figures of this run: `.local/bench.json` (not committed).")
                head, _, rest = body.rstrip("\n").partition("\n")
                blocks[key] = f"{head}\n\n{note}\n{rest}" if note and not rest.lstrip().startswith("*(From") else body
    return blocks


def _header(r: dict) -> list[str]:
    m = r["machine"]
    whole = (f"the whole run took {r['total_seconds'] / 60:.0f} min. Every figure comes from that one run"
             if "total_seconds" in r else "sections were measured one at a time (`make bench ONLY=…`)")
    load_after = (f" and {', '.join(f'{x:.1f}' for x in m['load_after'])} at the end" if "load_after" in m else "")
    return [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {r['date']}; {whole}" + (f" except those measured again later "
                                                             f"({'; '.join(r['later'])})" if r.get("later") else "")
        + "; p50 is the median, p99 the nearest-rank 99th percentile.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gb']:.0f} GB RAM, Python {m['python']}, {m['os']}. "
        f"Load average (1, 5, 15 min) {', '.join(f'{x:.1f}' for x in m['load_before'])} at the start{load_after}: "
        "other processes may share the cores, so absolute times are pessimistic; ratios against a baseline run in "
        "the same process are the fairer read.",
        "",
        "AWS is a moto server in a subprocess (`bench/moto_server.py`: its CPU and memory are not in the measured "
        "processes' figures) with every resource of `infra/template.json` made by `create_all`. That server fixes "
        "two moto costs AWS does not have (TransactWriteItems copying whole tables, SendMessage counting the whole "
        "queue), without which bulk runs are quadratic in the file size. Every call still crosses HTTP on "
        "loopback, and moto is much slower than DynamoDB: throughput figures are floors.",
        "",
    ]


def _cold_start(r: dict) -> list[str]:
    cold = r["cold_start"]

    def line(label: str, key: str, bar: str = "") -> str:
        return _row(label, f"{cold[key + '_ms']:.0f} ms", f"{cold.get(key + '_cpu_ms', float('nan')):.0f} ms",
                    ", ".join(map(str, cold[key + "_runs"])), bar)
    out = [
        "## Cold start",
        "",
        "`python -m bench --only cold_start` (`bench/coldstart.py`): each import in a fresh interpreter, as Lambda "
        "does before the first event.",
        "",
        _row("import in a fresh interpreter", "wall, median", "CPU, median", "the runs (wall, ms)", "bar < 200 ms"),
        _row("---", "---:", "---:", "---", "---"),
        line("`import app`, with bytecode (what `make package` ships now)", "app", _ok(cold["app_ms"] < 200)),
    ]
    if "source_only_ms" in cold:
        out += [line("`import app` without bytecode (what the Lambda package held before: nothing to load, "
                     "every module compiled)", "source_only"),
                line("the chosen libraries alone: chalice, boto3, pynamodb, pydantic, PyJWT, argon2-cffi, Powertools "
                     "Logger", "libraries")]
    if "sign_in_ms" in cold:
        out += [line("`import app`, then what the API's first staff sign-in imports (its flow, the models, argon2, "
                     "PyJWT): the API function's whole import before its first answer", "sign_in"),
                line("`import app`, then the interactive send lane's handler (`chalicelib.events.sender`): the "
                     "sender function's whole import", "send")]
    out += [
        line("baseline: Powertools Tracer/Logger/Metrics, X-Ray SDK, six boto3 clients eagerly, then `app`", "eager"),
        "",
        f"`import app` takes {cold['ratio']:.2f}× the eager baseline's wall time. CPU time (`time.process_time()` "
        "around the import) does not grow when other processes take the cores; wall time does.",
        "",
    ]
    if "sign_in_ms" in cold:
        out += ["Declaring the routes and pages imports no flow (`chalicelib/web/lazy.py`): each function imports what "
                "its events use at the first one, so `import app` is the part every function shares, and the two rows "
                "\"`import app`, then ...\" are what the API and the sender load in all before they answer: mostly the "
                "libraries (cryptography for ES256 tokens, botocore, pydantic, urllib3), which no change to this "
                "project's modules takes away.", ""]
    if cold.get("by_package"):
        top = [(name, ms) for name, ms in cold["by_package"] if ms >= 5]
        out += ["Where `import app`'s time goes (`python -X importtime -c 'import app'`, self time summed by package; "
                "this project's by area; importtime's own overhead included):", "",
                _row("package", "self time"), _row("---", "---:")]
        out += [_row(f"`{name}`", f"{ms:.0f} ms") for name, ms in top]
        out.append("")
    return out


def _in_process(r: dict) -> list[str]:
    ip = r["in_process"]
    out = [
        "## Sign-in and flows (in-process)",
        "",
        "`chalice.test.Client` on the app object Lambda runs, against moto; production argon2id "
        f"({ip['argon2']['params']}). Three warm-up calls per kind are not counted. The public endpoints' rate "
        "limits are reset between calls, outside the timed part.",
        "",
        _row("call", "n", "p50", "p99", "bar"),
        _row("---", "---:", "---:", "---:", "---"),
    ]
    for key, label, bar in (("staff_sign_in", "`POST /v1/staff/sign-in`", 100),
                            ("portal_sign_in", "`POST /v1/portal/sign-in`", 100),
                            ("registration", "`POST /v1/portal/register` (from the invitation link)", None),
                            ("invitation", "`POST /v1/portal/invitations`", None),
                            ("staff_reset_start", "`POST /v1/staff/password-reset/start`", None),
                            ("portal_reset_start", "`POST /v1/portal/password-reset`", None)):
        s = ip[key]
        out.append(_row(label, s["n"], f"{s['p50']:.0f} ms", f"{s['p99']:.0f} ms",
                        f"p50 < 100 ms: {_ok(s['p50'] < 100)}" if bar else ""))
    for key in ("hash", "verify"):
        s = ip["argon2"][key]
        out.append(_row(f"argon2id {key} alone", s["n"], f"{s['p50']:.1f} ms", f"{s['p99']:.1f} ms", ""))
    out += ["", "Sign-in without the argon2 verification (p50 minus verify p50): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in ip["sign_in_without_argon2_p50_ms"].items())
            + ".", ""]
    out += lambda_sizing_lines(ip)
    if "session_check" in ip:
        out += session_check_lines(ip["session_check"])
    return out


# Measured on Lambda at 512 MB (issue 21): an argon2id sign-in's hash takes 150-200 ms there.
LAMBDA_512_ARGON2_MS = (150, 200)
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, CPU in proportion to memory below it


def lambda_sizing_lines(ip: dict) -> list[str]:
    """The API function's memory, from the argon2 cost: the arithmetic, with this run's figures."""
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    memory = stages["prod"]["lambda_functions"]["api_handler"].get("lambda_memory_size",
                                                                      stages["prod"]["lambda_memory_size"])
    low, high = (ms * 512 / min(memory, FULL_VCPU_MB) for ms in LAMBDA_512_ARGON2_MS)
    at_1024 = [ms * 512 / 1024 for ms in LAMBDA_512_ARGON2_MS]
    rest = max(ip["sign_in_without_argon2_p50_ms"].values())
    return [
        "### Sizing the API function for argon2id",
        "",
        f"Lambda gives CPU in proportion to memory, one full vCPU at {FULL_VCPU_MB:,} MB; argon2id with p=1 runs on "
        "one core, so its time scales as 1 / memory up to there and not beyond. Measured on Lambda at 512 MB: "
        f"{LAMBDA_512_ARGON2_MS[0]}–{LAMBDA_512_ARGON2_MS[1]} ms per hash. At 1,024 MB that is "
        f"{at_1024[0]:.0f}–{at_1024[1]:.0f} ms, the whole p50 budget before any DynamoDB call; at "
        f"{memory:,} MB (`.chalice/config.json`, api_handler) it is {low:.0f}–{high:.0f} ms. The rest of a sign-in "
        f"took at most {rest:.0f} ms here (p50 minus the verification, against moto on loopback, slower than "
        f"DynamoDB's few ms a call), so a sign-in's p50 on Lambda is about {low + 10:.0f}–{high + rest:.0f} ms: under "
        f"100 ms. Cost: {memory / 1024:.2f} GB × ~0.1 s ≈ ${memory / 1024 * 0.1 * 0.0000166667:.7f} of "
        "compute per sign-in (x86 price); the other API calls are short too.",
        "",
    ]


def _bulk(r: dict) -> list[str]:
    bulk = r["bulk"]
    base = next(b for b in bulk if "naive" in b)
    naive = base["naive"]
    out = [
        "## Bulk invitations",
        "",
        "A generated CSV (`name,email,phone`; 5 % duplicate rows, 2 % emails on no record, the rest each on its own "
        "customer record) is put in the uploads bucket; moto's S3 notification goes to the bulk queue and its "
        "message, as Lambda's SQS event, to `app.on_bulk_invite_upload` in a child process per size "
        "(peak RSS = that process's VmHWM, its own peak: `ru_maxrss` of a child starts at its parent's RSS on Linux). "
        "Calls are counted in that process through botocore "
        "(`BaseClient._make_api_call`), every client included; per distinct email.",
        "",
        _row("rows", "distinct emails", "file", "handler time", "rows/s", "peak RSS (after import)",
             "DynamoDB calls / email", "SQS calls / email", "invited"),
        _row("---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"),
    ]
    for b in bulk:
        h = b["handler"]
        out.append(_row(f"{b['rows']:,}" + (" †" if b.get("separate_run") else ""), f"{b['distinct']:,}", f"{b['bytes'] / 1e6:.1f} MB",
                        f"{h['seconds']:.0f} s", f"{b['rows'] / h['seconds']:,.0f}",
                        f"{b['peak_rss_mb']:.0f} MB ({b['rss_after_import_mb']:.0f} MB)",
                        f"{h['dynamodb'] / b['distinct']:.3f}", f"{h['sqs'] / b['distinct']:.3f}",
                        f"{b['counts']['invited']:,}"))
    h = base["handler"]
    out.append(_row(f"{base['rows']:,}: naive baseline", f"{base['distinct']:,}", "", f"{naive['seconds']:.0f} s",
                    f"{base['rows'] / naive['seconds']:,.0f}", "", f"{naive['dynamodb'] / base['distinct']:.3f}",
                    f"{naive['sqs'] / base['distinct']:.3f}", ""))
    if any(b.get("separate_run") for b in bulk):
        out += ["", "† measured in a separate run (`make bench ONLY=bulk BULK_SIZES=…`, on "
                + ", ".join(b["separate_run"] for b in bulk if b.get("separate_run")) + ") against a fresh moto."]
    smallest, biggest = bulk[0], bulk[-1]
    peak = max(b["peak_rss_mb"] for b in bulk)

    def per_thousand(a: dict, b: dict) -> float:  # MB more per 1,000 more distinct emails, from file a to file b
        return (b["peak_rss_mb"] - a["peak_rss_mb"]) / max(1, b["distinct"] - a["distinct"]) * 1000
    per_k = per_thousand(smallest, biggest)
    # Two buffers with a fixed cap fill up as files grow to ~100k rows (SQLite's page cache of the seen-set, 4 MB;
    # the report's upload parts, 2 x 8 MB): flat means no growth past them, so it is read between the two largest.
    tail_per_k = per_thousand(bulk[-2], biggest) if len(bulk) > 1 else per_k
    cognito = 500_000  # rows: Cognito's import-job limit, the size the design asks for
    projection = "" if biggest["rows"] >= cognito else (
        f" Not measured at {cognito:,} rows in this run; projected from the largest file: about "
        f"{smallest['peak_rss_mb'] + per_k * (0.95 * cognito - smallest['distinct']) / 1000:.0f} MB peak RSS and "
        f"{cognito / (biggest['rows'] / biggest['handler']['seconds']) / 60:.0f} min against moto.")
    out += [
        "",
        f"Naive baseline (same process, same {base['rows']:,}-row file on a twin directory): GetItem on the email "
        "index, GetItem on the portal user, PutItem, SendMessage per row, no report. Against it the handler makes "
        f"{naive['dynamodb'] / max(h['dynamodb'], 1):.0f}× fewer DynamoDB calls and "
        f"{naive['sqs'] / max(h['sqs'], 1):.0f}× fewer SQS calls, and runs "
        f"{naive['seconds'] / h['seconds']:.1f}× as fast.",
        "",
        f"Building a PynamoDB `Connection` (a botocore client) costs {r['bulk_connection_ms']:.0f} ms here "
        "(median of 5); `chalicelib.core.models.transaction()` builds one per process, not one per transaction "
        f"({h['calls'].get('dynamodb:TransactWriteItems', 0)} transactions for {base['rows']:,} rows).",
        "",
        "Bars: " + "; ".join([
            f"peak RSS < 256 MB: {_ok(peak < 256)} (largest {peak:.0f} MB)",
            f"flat (under 10 bytes more per distinct email between the two largest files): {_ok(tail_per_k < 0.01)}, "
            f"{tail_per_k * 1000:.0f} bytes from {bulk[-2]['rows']:,} to {biggest['rows']:,} rows; from "
            f"{smallest['peak_rss_mb']:.0f} MB at {smallest['rows']:,} rows to {biggest['peak_rss_mb']:.0f} MB at "
            f"{biggest['rows']:,} ({per_k * 1000:.0f} bytes per email, the two capped buffers filling: SQLite's "
            "4 MB page cache for the file's distinct emails and the report's upload, two 8 MB parts at a time)",
            "≤ 0.1 DynamoDB calls per email: " + _ok(all(b["handler"]["dynamodb"] / b["distinct"] <= 0.1
                                                          for b in bulk)),
            f"{biggest['rows']:,} rows in one 15-minute Lambda run: {_ok(biggest['handler']['seconds'] < LAMBDA_SECONDS)}"
            f" ({biggest['handler']['seconds'] / 60:.1f} min against moto)",
        ]) + "." + projection,
        "",
        "![Bulk throughput and peak RSS against file size](docs/bench-bulk.png)",
        "",
    ]
    return out


def _send(r: dict) -> list[str]:
    out = [
        "## Send queue",
        "",
        "N emails queued with `messaging.enqueue`, received from SQS, and handed to `app.on_send_message` ten per "
        "event (Lambda's batch size), one process, `PORTAL_SES_RATE_PER_SECOND` as given (the interactive lane counts its sends against it but never waits). Then every event is "
        "delivered a second time (SQS is at-least-once). Counted in the outbox (`PORTAL_OUTBOX_DIR`): one file per "
        "delivered message.",
        "",
        _row("configured rate", "messages", "time", "messages/s", "lost", "duplicated", "failed records",
             "AWS calls per message"),
        _row("---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"),
    ]
    for s in r["send"]:
        calls = ", ".join(f"{k} {v:.2f}" for k, v in s["calls_per_message"].items())
        out.append(_row(f"{s['rate']}/s", s["n"], f"{s['seconds']:.1f} s", f"{s['per_second']:.1f}", s["lost"],
                        s["duplicated"], s["failures"], calls))
    for s in r["send"]:
        if s["per_second"] < 0.9 * s["rate"]:  # say what holds a run below its configured rate
            out += ["", f"At {s['rate']}/s the limiter is not what bounds the sender: each message costs "
                        f"{1000 / s['per_second']:.1f} ms of work in one process (its idempotency record written "
                        "and completed in DynamoDB, the SES call, the outbox file), all against moto on loopback. "
                        "In AWS a higher rate comes from more concurrent send functions, all within the account's rate "
                        "(`PORTAL_SES_RATE_PER_SECOND`, shared through per-second counters)."]
    out.append("")
    return out


def _bulk_continuation(r: dict) -> list[str]:
    c = r["bulk_continuation"]
    per_invocation = c["seconds"] / max(1, c["continuations"] + 1)
    return ["## Bulk run across invocations", "",
            f"`python -m bench --only bulk_continuation --continuation-rows {c['rows']} --budget {c['budget']:g}` "
            "(`bench/bulk_continuation.py`): a generated file through the real handler in one child process with "
            "`PORTAL_BULK_TIME_BUDGET_SECONDS` set low, each continuation it queues handed to it again until the job "
            "is done.", "",
            _row("rows", "file", "time", "rows/s", "invocations", "peak RSS", "stored rows = file rows", "invited",
                 "invitations queued (users, message ids)"),
            _row("---:", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---"),
            _row(f"{c['file_rows']:,}", f"{c['bytes'] / 1e6:.1f} MB", f"{c['seconds']:.0f} s",
                 f"{c['rows_per_second']:,.0f}", f"{c['continuations'] + 1} ({per_invocation:.1f} s each)",
                 f"{c['peak_rss_mb']:.0f} MB", "yes" if c["stored_rows"] == c["file_rows"] else "**no**",
                 f"{c['counts']['invited']:,}", _queued(c.get("invitations"))), "",
            *([c["note"], ""] if c.get("note") else [])]


def _queued(invitations: dict | None) -> str:
    if not invitations:
        return "not counted in this run"
    return f"{invitations['queued']:,} ({invitations['users']:,}, {invitations['message_ids']:,})"


def _bulk_overlap(r: dict) -> list[str]:
    runs = r["bulk_overlap"]
    before = any("before" in o for o in runs)
    out = ["## Bulk chunks overlapped", "",
           "`python -m bench --only bulk_overlap --overlap-rows N --aws-latency-ms 0,10 [--baseline-rev REV]`: the "
           "same file on twin directories, once sequential (`PORTAL_BULK_OVERLAP=false`: one chunk after the "
           "other) and once overlapped (six chunks in flight, each read, decided, written, audited and put on the "
           "sending line as one task), in one run; with `--baseline-rev` first the handler of that revision (the "
           "code before issue 21, run from its own files). `--aws-latency-ms` adds a wait to each AWS call, as a "
           "network round trip would (moto answers in its own CPU time on these cores). moto is one Python process: "
           "its CPU a row, and how busy it was (its CPU over the run's time), say when its one core is the limit.",
           "",
           _row("rows", "added per call", *(["before issue 21 rows/s"] if before else []), "sequential rows/s",
                "overlapped rows/s", "speed-up", "DynamoDB / SQS calls per email", "moto CPU a row (busy)"),
           _row("---:", "---:", *(["---:"] if before else []), "---:", "---:", "---:", "---", "---")]
    for o in runs:
        seq, ovl = o["sequential"], o["overlapped"]
        calls = f"{ovl['dynamodb_per_email']:.3f} / {ovl['sqs_per_email']:.3f}"
        speedup = f"{o['speedup']:.2f}× over sequential"
        if "before" in o:
            calls = f"before {o['before']['dynamodb_per_email']:.3f} / {o['before']['sqs_per_email']:.3f}; now {calls}"
            speedup += f", {o['speedup_over_before']:.2f}× over before"
        out.append(_row(f"{o['rows']:,}", f"{o['aws_latency_ms']:g} ms",
                        *([f"{o['before']['rows_per_second']:,.0f}" if "before" in o else "–"] if before else []),
                        f"{seq['rows_per_second']:,.0f}", f"{ovl['rows_per_second']:,.0f}", speedup, calls,
                        _moto_busy(o)))
    loads = [f"{o['rows']:,} rows +{o['aws_latency_ms']:g} ms: "
             + ", ".join(f"{name} {o[name]['load'][0]:.1f}" for name in ("before", "sequential", "overlapped")
                         if name in o and o[name].get("load"))
             for o in runs]
    return out + ["", "Load average (1 min) after each run, the other work on these 2 cores included: "
                  + "; ".join(loads) + ".", ""]


def _moto_busy(o: dict) -> str:
    """moto's CPU a row and busy share, for each handler of one side-by-side run (older runs did not measure it)."""
    return ", ".join(f"{name} {o[name]['moto_cpu_ms_per_row']:.2f} ms ({100 * o[name]['moto_busy']:.0f} %)"
                     for name in ("before", "sequential", "overlapped")
                     if "moto_cpu_ms_per_row" in o.get(name, {})) or "–"


def _http(r: dict) -> list[str]:
    hb = r["http"]
    out = [
        "## API over HTTP (local stack)",
        "",
        "`make run` on free ports; the load tool runs in its own process on loopback, 10 s and 4 connections per "
        "endpoint. `chalice local` is a development server: one Python process (a thread per connection "
        "sharing one GIL) with the moto server and the dispatcher on the same 2 cores, so this is what the "
        "local stack sustains, not API Gateway + Lambda (which scales out per request).",
        "",
        _row("request", "requests/s", "p50", "p99", "non-2xx", "tool"),
        _row("---", "---:", "---:", "---:", "---:", "---"),
    ]
    for key, label in (("me", "`GET /v1/portal/me`"), ("portal_sign_in", "`POST /v1/portal/sign-in`"),
                       ("staff_sign_in", "`POST /v1/staff/sign-in`")):
        s = hb[key]
        out.append(_row(label, f"{s['rps']:.1f}", f"{s['p50_ms']:.0f} ms", f"{s['p99_ms']:.0f} ms",
                        s["errors"], s["tool"]))
    out.append("")
    return out


def _console(r: dict) -> list[str]:
    from bench import console
    return console.lines(r["console"])


def _sending(r: dict) -> list[str]:
    sl = r["sending"]
    return ["## Sending lanes", "",
            f"`python -m bench --only sending` (`bench/sendlanes.py`) at {sl['rate']}/s: a backlog of "
            f"{sl['backlog']:,} bulk emails for business A delivering through the local dispatcher's worker threads; "
            "meanwhile 50 staff reset codes requested through the flow (one every 0.4 s) and business B's 50 bulk "
            "invitations. Times from the outbox files.",
            "",
            _row("reset code request → outbox p50 / p99", "B's 50 invitations",
                 "most slots taken in a second (the shared rate's count)",
                 "most files in the outbox in a second, all (bulk)",
                 "one sender process, rate not limiting: one by one / a drainer's turn at once"),
            _row("---:", "---:", "---:", "---:", "---:"),
            _row(f"{sl['code_p50_s']:.2f} s / {sl['code_p99_s']:.2f} s", f"{sl['b_seconds']:.1f} s",
                 sl.get("max_slots_in_a_second", "–"),
                 f"{sl['max_sends_in_a_second']} ({sl['max_bulk_sends_in_a_second']})",
                 f"{sl['uncapped_per_second']:.0f} / {sl.get('uncapped_drainer_per_second', float('nan')):.0f} "
                 "sends/s"), "",
            "A send takes its slot just before its SES call; its outbox file is written when the call returns, so "
            "file times cluster where calls were slow (10 at once on two shared cores). The slots per second are what "
            "the shared rate let through; the calls reach SES within a moment of their slot.", ""]


def session_check_lines(sc: dict) -> list[str]:
    """The section on the live session check (bench/inproc.session_check's figures)."""
    def ops(calls: list[str]) -> str:
        return ", ".join(f"{c} ×{calls.count(c)}" for c in sorted(set(calls))) or "none"
    extra = sc["with_check"]["p50"] - sc["before"]["p50"]
    return [
        "### The live session check",
        "",
        "Every staff and portal call checks its session live (`chalicelib/core/sessions.py`): one BatchGetItem reads "
        "the tenant, the session and the account (strongly consistent for the last two), with no cache, so a "
        "disable or a sign-out is in force on the next call of every container. Measured on `GET "
        "/v1/customers?limit=1` with a staff admin's token, against the guard as it was before (a GetItem on "
        "the tenant, permissions from the token).",
        "",
        _row("", "n", "p50", "p99", "DynamoDB requests"),
        _row("---", "---:", "---:", "---:", "---"),
        _row("the check alone (`sessions.read` + `sessions.check`)", sc["check_alone"]["n"],
             f"{sc['check_alone']['p50']:.1f} ms", f"{sc['check_alone']['p99']:.1f} ms", ops(sc["check_calls"])),
        _row("the call, live check", sc["with_check"]["n"], f"{sc['with_check']['p50']:.1f} ms",
             f"{sc['with_check']['p99']:.1f} ms", ops(sc["call_calls"])),
        _row("the call, guard before the check", sc["before"]["n"], f"{sc['before']['p50']:.1f} ms",
             f"{sc['before']['p99']:.1f} ms", ops(sc["before_calls"])),
        "",
        f"The live check adds {extra:.1f} ms at p50 to the call here (moto over loopback) and no request: the "
        "tenant's GetItem became the one BatchGetItem. It writes the session's last_used_at at most once a "
        "minute.", ""]
