"""Where a running local stack can be found: `make run` writes `<local dir>/stack.json` once it answers (its pid,
the API's URL, the AWS endpoint, the bucket, the outbox) and removes it when it stops. `make wait` and
`make console` read it, so neither needs to be told the ports.

Standard library only: `make wait` runs this with the system python3, since on a fresh clone the other terminal's
`make run` may still be creating .venv.

    python3 -m ops.local.state wait [--timeout 300]   # until the stack answers; prints where it is
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "stack.json"
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes via a proxy


def local_dir() -> Path:
    """moto.log, the outbox and stack.json: .local/ unless PORTAL_LOCAL_DIR names another place."""
    return Path(os.environ.get("PORTAL_LOCAL_DIR") or PROJECT_ROOT / ".local").resolve()


def state_path() -> Path:
    return local_dir() / STATE_FILE


def write(info: dict) -> None:
    """Atomically: a reader never sees half a file."""
    path = state_path()
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, path)


def clear(pid: int) -> None:
    """Remove the file if it is still this process's (another stack may have started since and written its own)."""
    found = read()
    if found is not None and found.get("pid") == pid:
        state_path().unlink(missing_ok=True)


def read() -> dict | None:
    try:
        found = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, though maybe not ours; the health check decides
        return True
    return True


def _healthy(api_url: str) -> bool:
    try:
        with _no_proxy.open(f"{api_url}/v1/health", timeout=2) as answer:
            return answer.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def live() -> dict | None:
    """The state of a stack that is running and answering, or None (never started, stopped, killed, starting)."""
    found = read()
    if found is None or not _alive(found.get("pid")) or not isinstance(found.get("api_url"), str):
        return None
    return found if _healthy(found["api_url"]) else None


def wait(timeout_s: float) -> dict | None:
    deadline = time.monotonic() + timeout_s
    while True:
        found = live()
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make wait", description="Wait until the local stack answers.")
    parser.add_argument("command", choices=["wait"])
    parser.add_argument("--timeout", type=float, default=300, help="seconds (default 300: a first run installs)")
    args = parser.parse_args(argv)
    if live() is None:
        print(f"waiting for the local stack (`make run`, e.g. in another terminal) to answer; "
              f"up to {args.timeout:.0f} s", file=sys.stderr, flush=True)
    found = wait(args.timeout)
    if found is None:
        print(f"make wait: error: no local stack answered within {args.timeout:.0f} s "
              f"(nothing in {state_path()} with a live stack): start one with `make run`", file=sys.stderr)
        return 1
    print(f"local stack ready: API {found['api_url']}, AWS endpoint {found.get('aws_endpoint')}, "
          f"outbox {found.get('outbox')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
