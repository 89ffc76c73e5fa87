"""The one password module of the product: the policy of DESIGN rule 11 and argon2id hashing.

Every flow that sets a password (staff, portal users, temporary passwords) calls `check_policy` and
`hash_password`; the error codes say which rule failed so pages and clients can explain it."""
import gzip
from functools import lru_cache
from importlib import resources

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 hashes anything, but a bound stops abuse of the hashing cost

# OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

POLICY_TEXT = [
    f"At least {MIN_LENGTH} characters",
    "An upper case and a lower case letter",
    "A digit",
    "Not a common password",
]

RULE_MESSAGES = {
    "password_too_short": f"The password needs at least {MIN_LENGTH} characters.",
    "password_too_long": f"The password can have at most {MAX_LENGTH} characters.",
    "password_needs_upper": "The password needs an upper case letter.",
    "password_needs_lower": "The password needs a lower case letter.",
    "password_needs_digit": "The password needs a digit.",
    "password_too_common": "This password is too common; choose one that is harder to guess.",
}


class PolicyViolation(Exception):
    def __init__(self, code: str):
        super().__init__(RULE_MESSAGES[code])
        self.code = code
        self.message = RULE_MESSAGES[code]


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    data = resources.files("chalicelib").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode().splitlines() if line.strip())


def policy_failures(password: str) -> list[str]:
    """Every rule the password breaks, in the order the policy lists them (empty when it passes)."""
    failures = []
    if len(password) < MIN_LENGTH:
        failures.append("password_too_short")
    if len(password) > MAX_LENGTH:
        failures.append("password_too_long")
    if not any(c.isupper() for c in password):
        failures.append("password_needs_upper")
    if not any(c.islower() for c in password):
        failures.append("password_needs_lower")
    if not any(c.isdigit() for c in password):
        failures.append("password_needs_digit")
    if password.lower() in common_passwords():
        failures.append("password_too_common")
    return failures


def check_policy(password: str) -> None:
    failures = policy_failures(password)
    if failures:
        raise PolicyViolation(failures[0])


@lru_cache(maxsize=1)
def _hasher():
    from argon2 import PasswordHasher, Type
    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_PARALLELISM, type=Type.ID)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists: a missing hash is checked against a dummy one."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("dummy-password-for-timing-0")
