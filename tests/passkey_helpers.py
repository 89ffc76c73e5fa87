"""A passkey authenticator in software for the API tests (issue 18): a real P-256 key made with `cryptography`,
real authenticatorData and clientDataJSON bytes, the attestation object and COSE key in CBOR by `cbor2`, and ECDSA
signatures over exactly what a device signs, so Duo's webauthn library verifies them as it verifies any device's.
The browser tests use Chromium's own virtual authenticator instead (tests/test_console_browser_passkeys.py)."""
import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "http://portal.test"  # conftest's PORTAL_PUBLIC_BASE_URL
RP_ID = "portal.test"
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One passkey on one device. `create` answers registration options, `get` sign-in options; `count` is the
    signature counter it reports (moved on by each `get`, or set by a test to play a clone)."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.count = 0
        self.user_handle: str | None = None

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _auth_data(self, rp_id: str, flags: int, attested: bool = False) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + self.count.to_bytes(4, "big")
        if attested:
            data += bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + self._cose_key()
        return data

    def create(self, options: dict, *, origin: str = ORIGIN, uv: bool = True) -> dict:
        """navigator.credentials.create() for these options (a PublicKeyCredentialCreationOptionsJSON)."""
        self.user_handle = options["user"]["id"]
        client = json.dumps({"type": "webauthn.create", "challenge": options["challenge"], "origin": origin,
                             "crossOrigin": False}).encode()
        flags = UP | AT | (UV if uv else 0)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {},
                                   "authData": self._auth_data(options["rp"]["id"], flags, attested=True)})
        return {"id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "platform",
                "response": {"clientDataJSON": b64(client), "attestationObject": b64(attestation),
                             "transports": ["internal"]},
                "clientExtensionResults": {}}

    def get(self, options: dict, *, origin: str = ORIGIN, uv: bool = True, count: int | None = None,
            rp_id: str | None = None, user_handle: bool = True) -> dict:
        """navigator.credentials.get() for these options (a PublicKeyCredentialRequestOptionsJSON)."""
        self.count = self.count + 1 if count is None else count
        client = json.dumps({"type": "webauthn.get", "challenge": options["challenge"], "origin": origin,
                             "crossOrigin": False}).encode()
        auth = self._auth_data(rp_id or options.get("rpId") or RP_ID, UP | (UV if uv else 0))
        signature = self.key.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        response = {"clientDataJSON": b64(client), "authenticatorData": b64(auth), "signature": b64(signature)}
        if user_handle and self.user_handle:
            response["userHandle"] = self.user_handle
        return {"id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "platform",
                "response": response, "clientExtensionResults": {}}


def register(http, token, name=None, device=None):
    """Options, then the device's answer: (device, the add answer)."""
    device = device or SoftAuthenticator()
    status, started = http.post("/v1/staff/passkeys/options", token=token)
    assert status == 200, started
    body = {"credential": device.create(started["options"]), **({"name": name} if name else {})}
    status, added = http.post("/v1/staff/passkeys", body, token=token)
    assert status == 201, added
    return device, added


def sign_in_without_password(http, device, **bound):
    """Options (optionally bound to tenant_id / username), then the device's answer: (status, body)."""
    status, started = http.post("/v1/staff/sign-in/passkey/options", bound)
    assert status == 200, started
    return http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]), **bound})
