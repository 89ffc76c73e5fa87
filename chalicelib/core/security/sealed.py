"""Secrets the product must read back (an authenticator app's TOTP secret: a code is checked against it, so it
cannot be hashed like a password) are kept sealed with AES-256-GCM, never in clear.

Why AES-GCM with a data key in the key ring (keys.data_keys) rather than KMS: the key ring is already the one
secret every function reads (cached, through Powertools Parameters), so sealing costs no call and no new IAM grant
and works the same against the local stack; GCM authenticates, and the associated data names the record a value
belongs to, so a sealed value copied onto another person (or another tenant's person) does not open.

A sealed value is `v1.<data key id>.<base64url(12-byte nonce + ciphertext + tag)>`: the key id lets a new data key
seal while the older ones still open what they sealed."""
import base64
import os

from chalicelib.core.security import keys

VERSION = "v1"


class Unsealable(Exception):
    """A sealed value that does not open: wrong record, unknown key, or tampered with."""


def seal(plaintext: str, context: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    kid, found = keys.data_keys()
    nonce = os.urandom(12)  # random 96-bit nonces: far below GCM's 2^32 messages per key for a person's secrets
    sealed = AESGCM(found[kid]).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(value: str, context: str) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    version, _, rest = value.partition(".")
    kid, _, body = rest.partition(".")
    key = keys.data_keys()[1].get(kid)
    if version != VERSION or key is None:
        raise Unsealable("unknown data key")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise Unsealable("does not open") from exc
