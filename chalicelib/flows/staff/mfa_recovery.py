"""Recovery codes: ten single-use codes that stand in for a lost authenticator, shown once and stored only as keyed
hashes (HMAC-SHA-256 under a key derived from the ring's data key, so a copy of the table alone cannot test
guesses offline). A new set replaces the old one in one write; a code is spent by one conditional write that
removes its hash only while it is there, so of concurrent uses of one code exactly one succeeds."""
import hashlib
import hmac
import secrets
from functools import lru_cache

from pynamodb.exceptions import UpdateError

from chalicelib.core.errors import Conflict
from chalicelib.core.models import Person, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape
from chalicelib.core.security import keys
from chalicelib.flows.staff import mfa

COUNT = 10
LENGTH = 10  # 10 characters of 32: 50 bits each, with guesses limited by the sign-in lockout
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u to misread


class RecoveryCodes(Shape):
    recovery_codes: list[str]  # shown once: only their hashes are kept


@lru_cache(maxsize=8)
def _key(data_key: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"portal-access recovery codes",
                info=b"hmac-sha256 recovery code").derive(data_key)


def normalise(code: str) -> str:
    """As typed: any case, spaces and dashes ignored, and the letters Crockford reads as digits read so."""
    text = code.strip().lower().replace(" ", "").replace("-", "")
    return text.translate(str.maketrans("oil", "011"))


def _hash(kid: str, key: bytes, person: Person, code: str) -> str:
    # keyed by the person as well: the same code on two people (or two tenants) hashes apart
    message = f"{person.tenant_id}#{person.person_id}#{normalise(code)}".encode()
    return f"{kid}:{hmac.new(_key(key), message, hashlib.sha256).hexdigest()}"


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def generate(person: Person, *, ip: str | None, actor: str | None = None) -> list[str]:
    """A new set of ten codes (the old set dies in the same write); the codes are returned once."""
    kid, found = keys.data_keys()
    codes = [_new_code() for _ in range(COUNT)]
    hashed = {_hash(kid, found[kid], person, code) for code in codes}
    person.update(actions=[Person.recovery_codes.set(hashed), Person.recovery_codes_at.set(now())],
                  add_version_condition=False)
    mfa.record(person, "staff.mfa_recovery_codes_made", actor=actor, ip=ip)
    return codes


def regenerate(principal: Principal, ip: str | None) -> RecoveryCodes:
    """POST /v1/staff/mfa/recovery-codes: a new set, for someone with a factor, after a recent sign-in."""
    person = mfa.person_of(principal)
    mfa.require_recent_sign_in(principal)
    if not mfa.has_factor(person):
        raise Conflict("no_second_factor", "Set up an authenticator app or a passkey first: recovery codes stand "
                       "in for it.")
    codes = generate(person, ip=ip)
    mfa.notify(person, "recovery_codes")
    return RecoveryCodes(recovery_codes=codes)


def looks_like(code: str) -> bool:
    text = normalise(code)
    return len(text) == LENGTH and all(ch in ALPHABET for ch in text)


def spend(person: Person, code: str) -> bool:
    """Whether the code is one of the person's, spending it: the conditional write removes its hash only while the
    set still holds it, so a code is accepted once whatever the concurrency."""
    if not person.recovery_codes or not looks_like(code):
        return False
    _, found = keys.data_keys()
    for kid, key in found.items():
        hashed = _hash(kid, key, person, code)
        if hashed not in person.recovery_codes:
            continue
        try:
            person.update(actions=[Person.recovery_codes.delete({hashed})],
                          condition=Person.recovery_codes.contains(hashed), add_version_condition=False)
        except UpdateError as exc:
            mfa.reraise_unless_refused(exc)
            return False
        return True
    return False


def remaining(person: Person) -> int:
    return len(person.recovery_codes or ())
