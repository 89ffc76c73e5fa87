"""Finds email addresses in a CSV of any layout (DESIGN rule 3), streaming: bytes come in chunks, lines go out
one by one, so memory stays flat whatever the file size.

It does not parse columns: staff files have every layout (header or not, any column, `,` `;` or tab, quoted
cells, several emails in a cell, `Name <a@b.com>`), so it looks for what looks like an address anywhere in the
line. Something with an `@` that is not a valid address is reported as `invalid` rather than silently dropped."""
import codecs
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from chalicelib.core.identity import normalise_email

MAX_LINE_CHARS = 1 << 20  # a "line" longer than this is cut: a file without line ends must not fill memory
# What can surround an address in a cell: separators, quotes, brackets, whitespace.
CANDIDATE = re.compile(r"[^\s,;<>\"()\[\]{}|]*@[^\s,;<>\"()\[\]{}|]*")
TRIM = ".:!?*`'"  # around an address, not part of it (an apostrophe inside, as in o'neil@, is kept)
LINE_END = re.compile(r"\r\n|\r|\n")


class BadFile(Exception):
    """A file that cannot be a CSV of emails; `code` goes into the report."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Found:
    line: int
    emails: list[str]  # normalised, valid
    invalid: list[str]  # attempted addresses that are not valid (as written, shortened)


def _encoding(head: bytes) -> tuple[str, int]:
    """(codec, bytes of BOM to skip) from the first bytes; refuses binary formats by their signature."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", 0  # the utf-16 codec reads the BOM itself
    if head.startswith(b"PK\x03\x04"):
        raise BadFile("not_csv", "This is a zip or Excel workbook, not a CSV: save it as CSV and upload again.")
    if head.startswith(b"%PDF") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise BadFile("not_csv", "This is a PDF or an old Office file, not a CSV.")
    sample = head[:4096]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and sample[0::2].count(0) == 0:
        return "utf-16-le", 0  # UTF-16 without BOM (Excel's "Unicode text")
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and sample[1::2].count(0) == 0:
        return "utf-16-be", 0
    if b"\x00" in sample:
        raise BadFile("not_text", "This file is binary, not text.")
    return "utf-8", 0


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines from a stream of byte chunks: any BOM, UTF-8 or UTF-16, \\n, \\r\\n or \\r line ends."""
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:  # enough bytes to recognise the encoding
        head += chunk
        if len(head) >= 4096:
            break
    if not head.strip(b" \t\r\n\x00" + codecs.BOM_UTF8 + codecs.BOM_UTF16_LE + codecs.BOM_UTF16_BE):
        raise BadFile("empty_file", "The file is empty.")
    codec, skip = _encoding(head)
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    first_text = decoder.decode(head[skip:])
    if first_text and _looks_binary(first_text):
        raise BadFile("not_text", "This file is not readable text (is it a spreadsheet or an image?).")
    pending = first_text
    for chunk in chunks:
        pending += decoder.decode(chunk)
        pending, complete = _split(pending)
        yield from complete
    pending += decoder.decode(b"", final=True)
    *complete, last = LINE_END.split(pending)
    yield from complete
    if last:
        yield last


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    odd = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\t\r\n\f\v"))
    return odd > max(8, len(sample) // 10)


def _split(text: str) -> tuple[str, list[str]]:
    """(incomplete rest, complete lines). A trailing \r is held back: its \n may start the next chunk."""
    hold = ""
    if text.endswith("\r"):
        text, hold = text[:-1], "\r"
    parts = LINE_END.split(text)
    rest = parts.pop() + hold
    while len(rest) > MAX_LINE_CHARS:
        parts.append(rest[:MAX_LINE_CHARS])
        rest = rest[MAX_LINE_CHARS:]
    return rest, parts


def addresses(line: str) -> tuple[list[str], list[str]]:
    """(valid normalised emails, invalid attempts) in one line, in order of appearance."""
    valid, invalid = [], []
    for match in CANDIDATE.finditer(line):
        text = match.group(0).strip(TRIM)
        if text.lower().startswith("mailto:"):
            text = text[7:]
        if "@" not in text:
            continue
        try:
            email = normalise_email(text)
        except ValueError:
            invalid.append(text[:100])
            continue
        valid.append(email)
    return valid, invalid


def scan(chunks: Iterable[bytes]) -> Iterator[Found]:
    for number, line in enumerate(lines(chunks), start=1):
        emails, invalid = addresses(line)
        yield Found(number, emails, invalid)
