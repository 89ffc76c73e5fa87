"""The memory of a bulk run's last step: uploading its stored rows (bulk_rows.RowsWriter.upload: all.jsonl, one file
per outcome, report.csv), which a continued run's last invocation does for the whole file after joining its parts.

`python -m bench.rows_upload [ROWS] [MS]` (defaults 1,500,000 and 200): writes ROWS rows in a child process per way
of uploading, against a moto server in a subprocess whose every call waits MS more (a slow or busy S3: the 2M-row
run's moto held 17 GB), and prints each child's peak RSS before and after the upload: the way the code uploads now
(upload_text: the temporary file's bytes on disk, two 8 MB parts at a time) and the way it did when the 2,000,000-row
run peaked at 358 MB (a text-to-bytes stream through boto3's default transfer settings)."""
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, free_port, set_environment, start_moto


class _Encoded(io.RawIOBase):
    """The earlier way: a text file read as UTF-8 bytes through a stream (boto3 buffers such a stream by parts)."""

    def __init__(self, f) -> None:
        self._f, self._rest = f, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while len(self._rest) < len(buffer):
            block = self._f.read(1 << 16)
            if not block:
                break
            self._rest += block.encode()
        n = min(len(buffer), len(self._rest))
        buffer[:n], self._rest = self._rest[:n], self._rest[n:]
        return n


def _peak_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def child(way: str, rows: int, latency_ms: float) -> None:
    from bench.bulk import _add_latency
    from chalicelib.core import config
    from chalicelib.flows.portal import bulk_rows
    if way == "before":
        def stream_upload(f, bucket, key, content_type=None, skip_header=False):
            f.seek(0)
            config.client("s3").upload_fileobj(_Encoded(f), bucket, key)
            f.close()
        bulk_rows.upload_text = stream_upload
    bucket = f"rows-upload-{way}"
    config.client("s3").create_bucket(Bucket=bucket)
    writer = bulk_rows.RowsWriter()
    for i in range(rows):
        writer.add({"line": i + 2, "email": f"c{i:07d}@bench-cont-abcdef.example", "outcome": "invited",
                    "access": "billing"})
    _add_latency(latency_ms)
    before, started = _peak_mb(), time.perf_counter()
    writer.upload(bucket, "rows/")
    print(json.dumps({"way": way, "rows": rows, "peak_before_mb": before, "peak_after_mb": _peak_mb(),
                      "seconds": time.perf_counter() - started}))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_500_000
    latency_ms = sys.argv[2] if len(sys.argv) > 2 else "200"
    port = free_port()
    with tempfile.TemporaryDirectory() as outbox:
        set_environment(port, outbox)
        moto = start_moto(port, Path(outbox) / "moto.log")
        try:
            for way in ("now", "before"):
                command = [sys.executable, "-m", "bench.rows_upload", "child", way, str(rows), latency_ms]
                out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print(f"{way}: {rows:,} rows, +{latency_ms} ms a call, peak RSS {r['peak_before_mb']:.0f} MB before "
                      f"the upload, {r['peak_after_mb']:.0f} MB after ({r['peak_after_mb'] - r['peak_before_mb']:+.0f} MB), "
                      f"{r['seconds']:.1f} s")
        finally:
            moto.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
