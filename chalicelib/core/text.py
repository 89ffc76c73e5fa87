"""One-line text: names, addresses, usernames, emails, phone numbers, ids, tokens. They end up in email subjects
and bodies, SMS, CSV reports, logs and admin screens, where a line break starts a new header or a new line of the
message (header and body injection), a NUL cuts a value short, and a bidi override makes text read differently
from what it is. So request models type them `OneLine`: a value holding any such character is refused with
400 `invalid_request` naming the field (chalicelib/web/api.py turns the validation error into the envelope).

Refused: Unicode category Cc (U+0000-U+001F, U+007F-U+009F: NUL, tab, CR, LF, ESC, DEL, NEL ...), the line and
paragraph separators U+2028 and U+2029, and the bidi embeddings, overrides and isolates U+202A-U+202E and
U+2066-U+2069. Other format characters (zero-width joiners of emoji and Indic scripts, LRM/RLM) are ordinary text.
Passwords and client secrets are not one-line text: they are kept exactly as typed (schema.Password)."""
import re
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# The same set as a JSON-schema (ECMA-262) pattern, so /v1/openapi.json says what is accepted (and `make fuzz`
# generates text that can pass).
FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
PATTERN = f"^[^{FORBIDDEN}]*$"
_FORBIDDEN_RE = re.compile(f"[{FORBIDDEN}]")


def control_character(value: str) -> str | None:
    """The first character of `value` that one-line text may not hold, or None."""
    found = _FORBIDDEN_RE.search(value)
    return found.group() if found else None


def no_control_chars(value: str) -> str:
    found = control_character(value)
    if found is not None:
        # The code point, never the value: validation errors do not echo what was sent.
        raise PydanticCustomError("control_character",
                                  "must be one line of plain text, without line breaks or control characters "
                                  "(found U+{code})", {"code": f"{ord(found):04X}"})
    return value


class _OneLineSchema:
    """Adds the pattern to the field's JSON schema (length limits and descriptions stay)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict:
        schema = handler(core_schema)
        schema["pattern"] = PATTERN
        return schema


OneLine = Annotated[str, AfterValidator(no_control_chars), _OneLineSchema()]
