"""Access tokens: JWTs signed with ES256. The key ring lives in Secrets Manager as JSON
{"active_kid": kid, "keys": [{"kid", "private_pem", "created_at", "status": active|previous}]} and is read
through Powertools Parameters (cached for a few minutes). Every key in the ring verifies and is published in
JWKS, so a rotated-out key keeps verifying until an operator retires it."""
import base64
import json
import time
import uuid
from functools import lru_cache

from chalicelib.core import config

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


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@lru_cache(maxsize=4)
def _seed_key(seed: str) -> dict:
    """The initial key of a deployed stage: CloudFormation generates the secret with a random `seed` and no key
    (infra/aws.json), and every function derives the same ES256 key from it, so sign-in works from the first
    minute with no write and no race between cold starts. The first `keys rotate` stores it as a previous key."""
    import hashlib

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=b"portal-access signing-key seed",
               info=b"es256 initial key").derive(seed.encode())
    private = ec.derive_private_key(int.from_bytes(okm, "big") % (P256_ORDER - 1) + 1, ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"kid": "seed-" + hashlib.sha256(seed.encode()).hexdigest()[:11], "private_pem": pem, "created_at": 0,
            "status": "active"}


def _with_seed(ring: dict) -> dict:
    """The ring as it signs: with only a seed, the key derived from it is the active one."""
    if ring.get("active_kid") or not ring.get("seed"):
        return ring
    key = _seed_key(ring["seed"])
    return {**ring, "active_kid": key["kid"], "keys": [key, *(ring.get("keys") or [])]}


def _ring() -> dict:
    ring = _with_seed(_fetch_ring())
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


# --- data keys: AES-256-GCM keys for secrets kept at rest (authenticator-app secrets, sealed.py) ---
# Kept in the same secret as the signing keys (one place for every key of the product, read through the same
# cached provider), but apart from them: a data key must outlive any signing key, since what it sealed (a TOTP
# secret) lives as long as the person keeps the factor, while signing keys are retired after a rotation. So data
# keys are never derived from a signing key and rotating or retiring signing keys leaves them as they are.
# {"active_data_kid": kid, "data_keys": [{"kid", "key" (base64 of 32 bytes), "created_at"}]}; a stage whose secret
# holds only CloudFormation's `seed` derives its data key from the seed (as its first signing key) until the first
# `keys rotate`, which stores that derived key in the ring.

def data_keys() -> tuple[str, dict[str, bytes]]:
    """The active data key's id and every data key by id (those of the ring, or the seed's)."""
    ring = _fetch_ring()
    if ring.get("data_keys"):
        found = {k["kid"]: base64.b64decode(k["key"]) for k in ring["data_keys"]}
        return ring["active_data_kid"], found
    if ring.get("seed"):
        key = _seed_data_key(ring["seed"])
        return key["kid"], {key["kid"]: base64.b64decode(key["key"])}
    raise RuntimeError("no data key: run `portal-access keys rotate` (the local stack does it itself)")


@lru_cache(maxsize=4)
def _seed_data_key(seed: str) -> dict:
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"portal-access data-key seed",
               info=b"aes-256-gcm data key").derive(seed.encode())
    return {"kid": "seed-data-" + hashlib.sha256(seed.encode()).hexdigest()[:11],
            "key": base64.b64encode(key).decode(), "created_at": 0}


def _with_data_key(ring: dict) -> dict:
    """The ring with a data key kept in it: the seed's when it has one (what it sealed stays readable once the seed
    is dropped), else a new random one; a ring that has one is left as it is."""
    if ring.get("data_keys"):
        return ring
    if ring.get("seed"):
        key = _seed_data_key(ring["seed"])
    else:
        import os
        key = {"kid": uuid.uuid4().hex[:16], "key": base64.b64encode(os.urandom(32)).decode(),
               "created_at": int(time.time())}
    return {**ring, "active_data_kid": key["kid"], "data_keys": [key]}


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
    # a seed's key is kept as a previous key (its tokens still verify), and its data key as the data key
    ring = _with_data_key(_with_seed(_read_ring_uncached()))
    ring.pop("seed", None)
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
    ring = _with_seed(_read_ring_uncached())
    return [{"kid": k["kid"], "created_at": k["created_at"], "active": k["kid"] == ring.get("active_kid")}
            for k in ring["keys"]]


def ensure_signing_key() -> str:
    ring = _with_seed(_read_ring_uncached())
    if ring.get("active_kid") and not ring.get("data_keys") and not ring.get("seed"):
        _write_ring(_with_data_key(_read_ring_uncached()))  # a ring from before data keys: add one
    return ring.get("active_kid") or rotate()
