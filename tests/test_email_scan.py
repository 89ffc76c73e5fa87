"""The CSV email finder: a corpus of nasty real files, and Hypothesis (no crash, every email found, nothing
invented)."""
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.flows.portal import email_scan

CORPUS = Path(__file__).parent / "csv_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def chunked(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("chunk", [3, 7, 1 << 16])  # odd chunk sizes cut BOMs, \r\n and UTF-16 pairs
def test_corpus(name, chunk):
    expected = EXPECTED[name]
    data = (CORPUS / name).read_bytes()
    if expected["error"]:
        with pytest.raises(email_scan.BadFile) as err:
            list(email_scan.scan(chunked(data, chunk)))
        assert err.value.code == expected["error"]
        return
    found = list(email_scan.scan(chunked(data, chunk)))
    emails = list(dict.fromkeys(e for f in found for e in f.emails))
    assert emails == expected["emails"]
    assert sum(len(f.invalid) for f in found) == expected["invalid"]


def test_corpus_is_big_enough():
    assert len(EXPECTED) >= 20


def test_line_numbers_count_every_line_end_style():
    data = b"a@x.example\r\nb@x.example\rc@x.example\n\nd@x.example"
    found = {f.line: f.emails for f in email_scan.scan(chunked(data, 5)) if f.emails}
    assert found == {1: ["a@x.example"], 2: ["b@x.example"], 3: ["c@x.example"], 5: ["d@x.example"]}


local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s)
domain = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8), min_size=1,
                  max_size=3).map(lambda parts: ".".join(parts) + ".example")
address = st.builds(lambda user, host: f"{user}@{host}", local, domain)
noise = st.text(alphabet=st.characters(blacklist_characters="@", blacklist_categories=("Cs", "Cc")), max_size=20)
cell = st.one_of(noise, address, address.map(lambda a: f'"{a}"'), st.builds(lambda n, a: f"{n} <{a}>",
                                                                             noise.filter(lambda s: "<" not in s and ">" not in s), address))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(cell, min_size=1, max_size=5), max_size=20), sep=st.sampled_from([",", ";", "\t"]),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
       chunk=st.integers(min_value=1, max_value=64))
def test_every_address_found_and_nothing_invented(rows, sep, newline, encoding, chunk):
    text = newline.join(sep.join(row) for row in rows)
    written = [a.lower() for a in address_in(rows)]
    data = text.encode(encoding)
    try:
        found = list(email_scan.scan(chunked(data, chunk)))
    except email_scan.BadFile as bad:
        assert bad.code == "empty_file" and not written
        return
    got = [e for f in found for e in f.emails]
    assert set(got) == set(written)


def address_in(rows):
    import re
    out = []
    for row in rows:
        for c in row:
            m = re.search(r"[a-z0-9._+-]+@[a-z0-9.]+\.example", c)
            if m and "@" in c:
                out.append(m.group(0))
    return out


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if not e["error"]))
def test_a_read_resumed_at_any_line_end_finds_the_same_rest(name):
    """A bulk run continued in a new invocation reads from a Found's `end` (an S3 ranged GET) with the codec the
    first read detected: the rest of the file must come out as the uninterrupted read gives it."""
    data = (CORPUS / name).read_bytes()
    whole = list(email_scan.scan(chunked(data, 7)))
    codec, _ = email_scan.detect(data[:4096])
    for i in sorted({0, 1, len(whole) // 2, len(whole) - 1} & set(range(len(whole)))):
        rest = list(email_scan.scan(chunked(data[whole[i].end:], 5), codec, whole[i].end, whole[i].line))
        assert rest == whole[i + 1:], (name, i)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le"])
def test_offsets_are_byte_exact_in_every_encoding(encoding):
    text = "name;email\r\nJosé;\"Bücher <b@x.example>\"\rZoë,z@x.example\n\nlast@x.example"
    data = text.encode(encoding)
    whole = list(email_scan.scan(chunked(data, 3)))
    assert whole[-1].end == len(data) and [f.line for f in whole] == [1, 2, 3, 4, 5]
    codec, _ = email_scan.detect(data)
    for f in whole[:-1]:
        assert list(email_scan.scan([data[f.end:]], codec, f.end, f.line)) == whole[f.line:]
