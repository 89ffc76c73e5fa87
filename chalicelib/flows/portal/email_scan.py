"""Finds email addresses in a CSV of any layout (DESIGN rule 3), streaming: bytes come in chunks, lines go out
one by one, so memory stays flat whatever the file size.

It does not parse columns: staff files have every layout (header or not, any column, `,` `;` or tab, quoted
cells, several emails in a cell, `Name <a@b.com>`), so it looks for what looks like an address anywhere in the
line. Something with an `@` that is not a valid address is reported as `invalid` rather than silently dropped."""
import codecs
import itertools
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from chalicelib.core.identity import normalise_email

MAX_LINE_CHARS = 1 << 20  # a "line" longer than this is cut: a file without line ends must not fill memory
# What can surround an address in a cell: separators, quotes, brackets, whitespace.
CANDIDATE = re.compile(r"[^\s,;<>\"()\[\]{}|]*@[^\s,;<>\"()\[\]{}|]*")
TRIM = ".:!?*`'"  # around an address, not part of it (an apostrophe inside, as in o'neil@, is kept)
LINE_END = re.compile(r"\r\n|\r|\n")
_BYTE_END = re.compile(rb"\r\n|\r|\n")


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
    end: int = 0  # the byte offset in the file where the next line starts


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
    for text, _ in positioned_lines(chunks):
        yield text


def detect(head: bytes) -> tuple[str, int]:
    """(codec, bytes of BOM to skip) of a file from its first bytes (at least 4 KB, or the whole file);
    refuses empty, binary and non-CSV files (BadFile)."""
    if not head.strip(b" \t\r\n\x00" + codecs.BOM_UTF8 + codecs.BOM_UTF16_LE + codecs.BOM_UTF16_BE):
        raise BadFile("empty_file", "The file is empty.")
    codec, skip = _encoding(head)
    if codec == "utf-16":  # name the byte order, so a resumed read (without the BOM) decodes the same way
        codec, skip = ("utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"), 2
    first_text = codecs.getincrementaldecoder(codec)(errors="replace").decode(head[skip:])
    if first_text and _looks_binary(first_text):
        raise BadFile("not_text", "This file is not readable text (is it a spreadsheet or an image?).")
    return codec, skip


def positioned_lines(chunks: Iterable[bytes], codec: str | None = None,
                     offset: int = 0) -> Iterator[tuple[str, int]]:
    """(line, byte offset where the next line starts) from a stream of byte chunks. Without `codec` the chunks
    are the whole file (its encoding is detected); with it they start at `offset`, a line start a previous read
    gave (a run resumed in a new invocation reads from there: `Range: bytes=<offset>-`)."""
    chunks = iter(chunks)
    if codec is None:
        head = b""
        for chunk in chunks:  # enough bytes to recognise the encoding
            head += chunk
            if len(head) >= 4096:
                break
        codec, skip = detect(head)
        chunks, offset = itertools.chain([head[skip:]], chunks), offset + skip
    if codec == "utf-8":
        yield from _byte_lines(chunks, offset)
    else:
        yield from _text_lines(chunks, codec, offset)


def _byte_lines(chunks: Iterator[bytes], offset: int) -> Iterator[tuple[str, int]]:
    """UTF-8 split into lines as bytes (\\r and \\n never occur inside a multi-byte character), each line
    decoded on its own: the same text as decoding the whole stream, with exact byte offsets."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        pos = 0
        for end in _BYTE_END.finditer(pending):
            if end.end() == len(pending) and end.group() == b"\r":
                break  # its \n may start the next chunk
            yield pending[pos:end.start()].decode("utf-8", "replace"), offset + end.end()
            pos = end.end()
        pending, offset = pending[pos:], offset + pos
        while len(pending) > MAX_LINE_CHARS:
            cut = MAX_LINE_CHARS
            while cut > 0 and pending[cut] & 0xC0 == 0x80:  # not inside a character
                cut -= 1
            yield pending[:cut].decode("utf-8", "replace"), offset + cut
            pending, offset = pending[cut:], offset + cut
    pos = 0
    for end in _BYTE_END.finditer(pending):
        yield pending[pos:end.start()].decode("utf-8", "replace"), offset + end.end()
        pos = end.end()
    if pos < len(pending):
        yield pending[pos:].decode("utf-8", "replace"), offset + len(pending)


def _text_lines(chunks: Iterator[bytes], codec: str, offset: int) -> Iterator[tuple[str, int]]:
    """UTF-16 decoded, then split; a line's bytes are its text encoded again (two bytes a code unit; an invalid
    unit was replaced by one U+FFFD, also two bytes)."""
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")

    def size(text: str) -> int:
        return len(text.encode(codec, "surrogatepass"))

    def complete_lines(pending: str, lines: list) -> str:
        """Appends (line, offset after it) for each ended line of `pending`; returns what follows the last end."""
        nonlocal offset
        pos = 0
        for end in LINE_END.finditer(pending):
            line = pending[pos:end.start()]
            offset += size(line) + size(end.group())
            lines.append((line, offset))
            pos = end.end()
        return pending[pos:]

    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        hold = ""
        if pending.endswith("\r"):  # its \n may start the next chunk
            pending, hold = pending[:-1], "\r"
        lines: list[tuple[str, int]] = []
        pending = complete_lines(pending, lines)
        yield from lines
        while len(pending) > MAX_LINE_CHARS:
            offset += size(pending[:MAX_LINE_CHARS])
            yield pending[:MAX_LINE_CHARS], offset
            pending = pending[MAX_LINE_CHARS:]
        pending += hold
    lines = []
    pending = complete_lines(pending + decoder.decode(b"", final=True), lines)
    yield from lines
    if pending:
        yield pending, offset + size(pending)


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    odd = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\t\r\n\f\v"))
    return odd > max(8, len(sample) // 10)


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


def scan(chunks: Iterable[bytes], codec: str | None = None, offset: int = 0, line: int = 0) -> Iterator[Found]:
    """The addresses of each line. Without `codec`, the chunks are the whole file; with it, a resumed read from
    `offset` (a Found's `end`), whose first line is number `line` + 1."""
    for number, (text, end) in enumerate(positioned_lines(chunks, codec, offset), start=line + 1):
        emails, invalid = addresses(text)
        yield Found(number, emails, invalid, end)
