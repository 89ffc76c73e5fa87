"""The rows of one bulk invitation run, stored for the API and the console: every row of the file in file order
(line, email, outcome, access), as JSON Lines in S3 under `bulk-invite-reports/<tenant_id>/.jobs/<job_id>/<phase>/`:
`all.jsonl`, one `<outcome>.jsonl` per outcome that occurred, and `report.csv`.

Why S3 JSON Lines and not items in the jobs table: a run writes its rows once, at its end, as a handful of PUTs
whatever the file's size (100k rows as DynamoDB items would be 4,000 BatchWriteItem calls and 100k write units per
run, more than the run's own decisions cost); a page is one ranged GET at a byte offset (the cursor), so page 1,000
costs what page 1 does; and a filter by outcome reads that outcome's own file, never skipping the other rows. The
bucket's lifecycle rule for `bulk-invite-reports/` expires them with the report."""
import codecs
import csv
import json
import tempfile
from typing import IO

from botocore.exceptions import ClientError

from chalicelib.core import config
from chalicelib.core.errors import Invalid
from chalicelib.core.paging import make_cursor, page_args
from chalicelib.core.schema import Shape

REPORT_PREFIX = "bulk-invite-reports/"

# Each machine outcome of a row and the words the console shows for it.
OUTCOME_WORDS = {
    "will_invite": "will be invited",
    "invited": "invited",
    "skipped_not_on_record": "skipped: not on a customer or location record",
    "skipped_already_invited": "skipped: already invited",
    "skipped_active": "skipped: already has an active account",
    "skipped_bouncing": "skipped: earlier emails to this address bounced or were marked as spam",
    "skipped_disabled": "skipped: this portal user is disabled",
    "skipped_conflict": "skipped: the portal user changed at the same time; invite them again",
    "invalid": "invalid",
    "duplicate": "duplicate",
    "no_email": "skipped: no email on this line",
}
OUTCOMES = tuple(OUTCOME_WORDS)
ROW_BYTES = 700  # a stored row is at most ~600 bytes (an email of 254 characters, or 100 escaped characters)
CSV_COLUMNS = ("line", "email", "outcome", "access")
MAX_INLINE_CSV = 5 * 1024 * 1024  # larger reports are fetched from S3 (a Lambda response holds at most 6 MB)


def transfer_config():
    """Uploads of a run's files two 8 MB parts at a time. boto3's default (ten at once) holds up to ten parts in
    memory from a file object, and each of the 2M-row run's files is over 80 MB: its last invocation, which joins and
    uploads them, peaked at 358 MB (the bar: 256 MB whatever the file size)."""
    from boto3.s3.transfer import TransferConfig
    config = TransferConfig(max_concurrency=2, multipart_chunksize=8 * 1024 * 1024)
    config.max_in_memory_upload_chunks = 2  # s3transfer's own setting (boto3's constructor does not take it)
    return config


def prefix(tenant_id: str, job_id: str, phase: str) -> str:
    return f"{REPORT_PREFIX}{tenant_id}/.jobs/{job_id}/{phase}/"


class RowsWriter:
    """Rows as they are decided, into temporary files (memory stays flat); uploaded at the end of the run."""

    def __init__(self, header: bool = True) -> None:
        self._files: dict[str, IO[str]] = {}
        self._csv = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self._csv_out = csv.writer(self._csv)
        self._header = header  # a part of a continued run (bulk_checkpoints) has none: the joined report has it
        if header:
            self._csv_out.writerow(CSV_COLUMNS)

    def _file(self, name: str) -> IO[str]:
        if name not in self._files:
            self._files[name] = tempfile.TemporaryFile("w+", encoding="utf-8")
        return self._files[name]

    def add(self, entry: dict) -> None:
        row = {"line": entry["line"], "email": entry.get("email") or entry.get("text") or "",
               "outcome": entry["outcome"]}
        if entry.get("access"):
            row["access"] = entry["access"]
        text = json.dumps(row) + "\n"
        self._file("all").write(text)
        self._file(row["outcome"]).write(text)
        self._csv_out.writerow([row["line"], _csv_safe(row["email"]), row["outcome"], row.get("access", "")])

    def upload(self, bucket: str, at: str) -> None:
        self._file("all")  # an empty file still gets its (empty) list of rows
        for name, f in self._files.items():
            upload_text(f, bucket, f"{at}{name}.jsonl", "application/x-ndjson")
        upload_text(self._csv, bucket, f"{at}report.csv", "text/csv")

    def upload_part(self, bucket: str, at: str) -> list[str]:
        """These rows as one part of a continued run, under `at`: the names of the files written."""
        names = list(self._files)
        for name, f in self._files.items():
            upload_text(f, bucket, f"{at}{name}.jsonl")
        upload_text(self._csv, bucket, f"{at}report.csv", skip_header=self._header)
        return names

    def append_part(self, bucket: str, at: str, names: list[str]) -> None:
        """A part's rows after those held (a continued run's last invocation joins the parts in order)."""
        for name in names:
            download_text(bucket, f"{at}{name}.jsonl", self._file(name))
        download_text(bucket, f"{at}report.csv", self._csv)


def download_text(bucket: str, key: str, out: IO[str]) -> None:
    """An S3 object appended to a text file a block at a time (a UTF-8 character may straddle two blocks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    body = config.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    for block in body.iter_chunks(1 << 20):
        out.write(decoder.decode(block))
    out.write(decoder.decode(b"", final=True))


def upload_text(f: IO[str], bucket: str, key: str, content_type: str | None = None,
                skip_header: bool = False) -> None:
    """A text temporary file (UTF-8 on disk) uploaded from its bytes on disk, two 8 MB parts at a time, then
    closed. Not through a text-to-bytes wrapper: boto3 reads such a stream into memory part by part, ahead of the
    upload, which took a 2M-row run's last invocation to 358 MB."""
    f.flush()
    with open(f.fileno(), "rb", closefd=False) as raw:
        raw.seek(0)
        if skip_header:
            raw.readline()
        config.client("s3").upload_fileobj(raw, bucket, key, Config=transfer_config(),
                                           ExtraArgs={"ContentType": content_type} if content_type else None)
    f.close()


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @ first) is kept as text with a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- reading a page ----------------------------------------------------------------------------------------------

class BulkRow(Shape):
    line: int
    email: str
    outcome: str
    access: str | None = None


class BulkRowPage(Shape):
    items: list[BulkRow]
    next_cursor: str | None = None


def page(bucket: str, at: str, query: dict) -> dict:
    """One page of rows (all, or those of `outcome`), from the byte offset the cursor holds."""
    limit, start = page_args(query)
    outcome = query.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise Invalid("invalid_request", f"outcome must be one of: {', '.join(OUTCOMES)}.", field="outcome")
    if start is not None and not (start.isdigit() and len(start) < 16):
        raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor")
    offset = int(start or 0)
    key = f"{at}{outcome or 'all'}.jsonl"
    items: list[BulkRow] = []
    s3 = config.client("s3")
    total = 0
    at_line_start = offset == 0  # a cursor's offset must follow a newline: one made up may fall inside a row
    while len(items) < limit:
        want = (limit - len(items)) * ROW_BYTES
        first = offset if at_line_start else offset - 1
        try:
            got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{offset + want - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "InvalidRange", "404", "416"):
                break  # no row of that outcome, or past the end
            raise
        data = got["Body"].read()
        if not at_line_start:
            if data[:1] != b"\n":
                raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor")
            data, at_line_start = data[1:], True
        total = int(str(got.get("ContentRange", "")).rpartition("/")[2] or 0)
        end = offset + len(data) >= total
        lines = data.split(b"\n")
        if not end:
            lines = lines[:-1]  # the last one may be cut by the range
        if not lines and not end:  # a row longer than the range: never with our rows, but never loop
            raise ValueError(f"row over {want} bytes at {offset} in {key}")
        for raw in lines:
            if len(items) == limit:
                break
            offset += len(raw) + 1
            if raw:
                items.append(BulkRow(**json.loads(raw)))
        if end and len(items) < limit:
            offset = total  # every row read
            break
    more = len(items) == limit and offset < total
    return {"items": items, "next_cursor": make_cursor({"k": {"S": str(offset)}}, "k") if more else None}


def report_csv(bucket: str, at: str) -> tuple[bytes | None, str | None]:
    """The CSV report (line,email,outcome,access, rows in file order): its bytes, or, when over 5 MB, a
    pre-signed GET of it (valid 5 minutes)."""
    s3 = config.client("s3")
    key = f"{at}report.csv"
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if size > MAX_INLINE_CSV:
        return None, s3.generate_presigned_url("get_object", ExpiresIn=300,
                                               Params={"Bucket": bucket, "Key": key})
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read(), None
