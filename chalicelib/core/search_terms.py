"""The keys the directory's search index is written and read under (flows/customer_search.py): a phone in any
common spelling becomes one key, and a name becomes its words, lower-cased and without accents."""
import re
import unicodedata

MAX_NAME_WORDS = 8  # a name's words indexed (bounds the items a directory write adds to its transaction)
MAX_WORD_CHARS = 40
MIN_QUERY_CHARS = 2  # name words are filed by their first two letters
_WORD = re.compile(r"[^\W_]+")
_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_TEXT = re.compile(r"[+0-9\s().\-/]+")
MIN_PHONE_DIGITS = 7


def words(text: str) -> list[str]:
    """The distinct words of a name in order: NFKD without combining marks, case-folded, letters and digits only
    (so "José O'Neil-Smith" is jose, o, neil, smith)."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return list(dict.fromkeys(w[:MAX_WORD_CHARS] for w in _WORD.findall(plain.casefold())))


def name_words(name: str | None) -> list[str]:
    """The words of a name that are indexed: the first MAX_NAME_WORDS of two letters or more."""
    return [w for w in words(name or "") if len(w) >= MIN_QUERY_CHARS][:MAX_NAME_WORDS]


def looks_like_phone(text: str) -> bool:
    text = _EXTENSION.sub("", text.strip())
    return bool(_PHONE_TEXT.fullmatch(text)) and sum(ch.isdigit() for ch in text) >= MIN_PHONE_DIGITS


def phone_key(text: str | None) -> str | None:
    """One key for every common spelling of a phone number: "(555) 010-0000", "555.010.0000", "+1 555 010 0000"
    and "1-555-010-0000" are all +15550100000. A number that exists is its E.164 form (identity.normalise_mobile,
    phonenumbers); otherwise (records hold phones as typed, and 555 numbers do not exist) the digits, with +1 for
    10 digits or 1 and 10 digits, as normalise_mobile reads them. None when it holds fewer than 7 digits. An
    extension ("x12", "ext. 12") is not part of the key."""
    if not text:
        return None
    from chalicelib.core.identity import normalise_mobile
    bare = _EXTENSION.sub("", text.strip())
    digits = re.sub(r"\D", "", bare)
    if len(digits) < MIN_PHONE_DIGITS or len(digits) > 17:
        return None
    try:
        return normalise_mobile(bare)
    except ValueError:
        pass
    if bare.startswith("+") or bare.startswith("00"):
        return "+" + (digits[2:] if bare.startswith("00") else digits)
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return digits


def phone_keys(phones: list[str] | None) -> list[str]:
    return list(dict.fromkeys(k for k in (phone_key(p) for p in phones or []) if k))
