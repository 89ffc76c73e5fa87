"""The fallback load tool when wrk is not installed: `python -m bench.load URL SECONDS CONNECTIONS HEADERS [BODY]`,
one keep-alive connection per thread, prints {"rps", "p50_ms", "p99_ms", "errors", "tool"}."""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

from bench.common import percentile


def main(url, seconds, connections, headers, body):
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + float(seconds)
    samples, errors = [], [0]

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("POST" if body else "GET", parts.path, body=body or None, headers=json.loads(headers))
            response = conn.getresponse()
            response.read()
            samples.append(time.perf_counter() - started)
            errors[0] += response.status >= 400
    threads = [threading.Thread(target=worker) for _ in range(int(connections))]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"rps": len(samples) / (time.monotonic() - started), "p50_ms": statistics.median(samples) * 1000,
                      "p99_ms": percentile(samples, 99) * 1000, "errors": errors[0],
                      "tool": f"bench/load.py {connections} connections (wrk not installed)"}))


if __name__ == "__main__":
    main(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else "")
