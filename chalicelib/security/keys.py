"""Access tokens: JWTs signed with ES256. The key ring lives in Secrets Manager as JSON
{"active_kid": kid, "keys": [{"kid", "private_pem", "created_at", "status": active|previous}]} and is read
through Powertools Parameters (cached for a few minutes). Every key in the ring verifies and is published in
JWKS, so a rotated-out key keeps verifying until an operator retires it."""
import base64
import json
import time
import uuid
from functools import lru_cache

from chalicelib import config

ALGORITHM = "ES256"
ISSUER = "portal-access"
KEY_CACHE_SECONDS = 300


class InvalidToken(Exception):
    pass


@lru_cache(maxsize=1)
def _provider():
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    return SecretsProvider(boto3_client=config.client("secretsmanager"))


def _fetch_ring() -> dict:
    return _provider().get(config.signing_keys_secret(), transform="json", max_age=KEY_CACHE_SECONDS)


@lru_cache(maxsize=32)
def _private_key(pem: str):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    return load_pem_private_key(pem.encode(), password=None)


def _ring() -> dict:
    ring = _fetch_ring()
    if not ring.get("active_kid"):
        raise RuntimeError("no signing key: run `portal-access keys rotate` (the local stack does it itself)")
    return ring


def sign(claims: dict, ttl_seconds: int) -> str:
    import jwt
    ring = _ring()
    active = next(k for k in ring["keys"] if k["kid"] == ring["active_kid"])
    now = int(time.time())
    payload = {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + ttl_seconds, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(payload, _private_key(active["private_pem"]), algorithm=ALGORITHM,
                      headers={"kid": active["kid"], "typ": "JWT"})


def verify(token: str) -> dict:
    """Only ES256 with a known kid: `alg: none`, HS256 with the public key and unknown kids all fail."""
    import jwt
    try:
        header = jwt.get_unverified_header(token)
        key = next((k for k in _ring()["keys"] if k["kid"] == header.get("kid")), None)
        if key is None or header.get("alg") != ALGORITHM:
            raise InvalidToken("unknown key")
        return jwt.decode(token, _private_key(key["private_pem"]).public_key(), algorithms=[ALGORITHM],
                          issuer=ISSUER, options={"require": ["exp", "iat", "iss", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid") from exc


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def jwks() -> dict:
    out = []
    for key in _ring()["keys"]:
        numbers = _private_key(key["private_pem"]).public_key().public_numbers()
        out.append({"kty": "EC", "crv": "P-256", "alg": ALGORITHM, "use": "sig", "kid": key["kid"],
                    "x": _b64(numbers.x), "y": _b64(numbers.y)})
    return {"keys": out}


def derived_secrets(purpose: str) -> list[bytes]:
    """Symmetric 32-byte keys for one purpose (e.g. "pages-csrf"), one per key of the ring, the active key's
    first. Each is HKDF-SHA256 of that key's private scalar with the purpose as `info`, so no purpose ever uses
    the ECDSA key itself, purposes never share a key, and rotating the ring rotates them too (whatever was made
    with the previous key keeps verifying until that key is retired)."""
    ring = _ring()
    ordered = sorted(ring["keys"], key=lambda k: k["kid"] != ring["active_kid"])
    return [_derive(k["private_pem"], purpose) for k in ordered]


@lru_cache(maxsize=64)
def _derive(pem: str, purpose: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    scalar = _private_key(pem).private_numbers().private_value.to_bytes(32, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"portal-access derived secret",
                info=purpose.encode()).derive(scalar)


# --- operator side: rotation (CLI and local stack) ---

def _new_key() -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"kid": uuid.uuid4().hex[:16], "private_pem": pem, "created_at": int(time.time()), "status": "active"}


def _read_ring_uncached() -> dict:
    sm = config.client("secretsmanager")
    try:
        return json.loads(sm.get_secret_value(SecretId=config.signing_keys_secret())["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        return {"active_kid": None, "keys": []}


def _write_ring(ring: dict) -> None:
    sm = config.client("secretsmanager")
    body = json.dumps(ring)
    try:
        sm.put_secret_value(SecretId=config.signing_keys_secret(), SecretString=body)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=config.signing_keys_secret(), SecretString=body)
    _provider().clear_cache()


def rotate() -> str:
    ring = _read_ring_uncached()
    for key in ring["keys"]:
        key["status"] = "previous"
    key = _new_key()
    ring["keys"].append(key)
    ring["active_kid"] = key["kid"]
    _write_ring(ring)
    return key["kid"]


def retire(kid: str) -> None:
    ring = _read_ring_uncached()
    if kid == ring.get("active_kid"):
        raise ValueError("the active key cannot be retired; rotate first")
    ring["keys"] = [k for k in ring["keys"] if k["kid"] != kid]
    _write_ring(ring)


def list_keys() -> list[dict]:
    ring = _read_ring_uncached()
    return [{"kid": k["kid"], "created_at": k["created_at"], "active": k["kid"] == ring.get("active_kid")}
            for k in ring["keys"]]


def ensure_signing_key() -> str:
    ring = _read_ring_uncached()
    return ring["active_kid"] or rotate()
