"""Single-use tokens (invitation, reset, change links): 256-bit random values that only the recipient ever
sees. The database keeps their SHA-256, consumes them with one conditional write, and TTLs them."""
import hashlib
import secrets
import string

TOKEN_BYTES = 32  # 256 bits of entropy; the design asks for at least 128


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CODE_ALPHABET = string.ascii_letters + string.digits


def new_code(length: int = 8) -> str:
    """A case-sensitive code for SMS or email (62^8 ≈ 2^47, with attempts limited)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
