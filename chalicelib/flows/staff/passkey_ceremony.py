"""The WebAuthn ceremonies behind staff passkeys (issue 18), with Duo's webauthn library: the relying party, the
challenges, the options a browser needs, checking a new passkey and an assertion, the sign counter, and finding
a person from a credential alone. Nothing here knows HTTP or the steps of a sign-in: passkeys.py (a person's own
passkeys), mfa_signin.py (a passkey as the second factor) and passkey_signin.py (a sign-in without a password)
use it, and so does mfa.challenge (the passkey options of the `mfa_required` answer).

- Relying party: the id is the public base URL's host, the origin its scheme, host and port (config), so a
  passkey made on https://portal.acme.com works there only; the browser refuses an IP address as an id.
- Challenges: the challenge a browser signs IS a 256-bit token of the single-use store (core/single_use.py),
  kept only as its SHA-256, 5 minutes, of a kind per purpose (register, factor, sign_in) and issued for one
  tenant and person (or, for a sign-in without a password, for one business or any). The answer is traced back
  to its challenge through the clientDataJSON the authenticator signed, and the challenge is spent by one
  conditional write BEFORE anything else is checked: each challenge is one attempt, a replay or an old one is
  refused, and of two uses at the same instant one at most goes on.
- Credential ids: each is a Claim (the uniqueness table) under a partition no tenant can have
  (`#passkey-` and one of 64 characters of its hash, so passkey sign-ins spread over 64 keys), owned by
  `tenant#person`: a credential finds its person without the business, and one credential belongs to one person.
- Sign counter: an assertion whose counter is not above the stored one (when either is not 0) is refused as a
  clone (the library checks it), and the new counter is written by a condition that it is still above the
  stored one, so two uses racing with one counter value cannot both pass.

The library and cryptography are imported inside the functions: an API request that never sees a passkey does
not pay for them at a cold start."""
import base64
import binascii
import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import config, single_use
from chalicelib.core.errors import Error
from chalicelib.core.models import Claim, Person, Token, now
from chalicelib.core.schema import Shape
from chalicelib.core.security.tokens import token_hash

CHALLENGE_SECONDS = 5 * 60
KINDS = {"register": "staff_passkey_register", "factor": "staff_passkey_factor", "sign_in": "staff_passkey_sign_in"}
ANY = "*"  # a sign-in challenge issued for no business in particular (a discoverable passkey names its own)
MAX_PASSKEYS = 10
TRANSPORTS = ("usb", "nfc", "ble", "internal", "hybrid", "smart-card", "cable")
CLAIM_PREFIX = "passkey#"

# --- what a browser sends (the JSON of PublicKeyCredential, base64url for bytes) -----------------------------------

Base64url = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]*={0,2}$")]


class _Browser(Shape):
    """What a browser's PublicKeyCredential.toJSON() gives has more fields than the ceremony reads (publicKey,
    publicKeyAlgorithm...): they are ignored rather than refused, so a client may send toJSON() as it is."""
    model_config = ConfigDict(extra="ignore")


class AttestationResponse(_Browser):
    clientDataJSON: Annotated[Base64url, Field(min_length=16, max_length=4096)]
    attestationObject: Annotated[Base64url, Field(min_length=16, max_length=24576)]
    transports: Annotated[list[Annotated[str, Field(pattern=r"^[a-z-]{1,32}$")]], Field(max_length=8)] | None = None


class AssertionResponse(_Browser):
    clientDataJSON: Annotated[Base64url, Field(min_length=16, max_length=4096)]
    authenticatorData: Annotated[Base64url, Field(min_length=16, max_length=4096)]
    signature: Annotated[Base64url, Field(min_length=8, max_length=1024)]
    userHandle: Annotated[Base64url, Field(max_length=128)] | None = None


class _Credential(_Browser):
    id: Annotated[Base64url, Field(min_length=4, max_length=1400)]
    rawId: Annotated[Base64url, Field(min_length=4, max_length=1400)]
    type: Literal["public-key"]
    authenticatorAttachment: Literal["platform", "cross-platform"] | None = None
    clientExtensionResults: dict[str, Any] | None = None


class RegistrationCredential(_Credential):
    """The answer of navigator.credentials.create() for the registration options."""
    response: AttestationResponse


class AssertionCredential(_Credential):
    """The answer of navigator.credentials.get() for the sign-in options."""
    response: AssertionResponse


class PasskeyOptions(Shape):
    # for navigator.credentials.create() / get(), as the WebAuthn JSON forms (base64url for bytes):
    # PublicKeyCredentialCreationOptionsJSON or PublicKeyCredentialRequestOptionsJSON
    options: dict[str, Any]
    expires_in: int


class Refused(Exception):
    """A ceremony that did not pass. Why is for the code that reads it, never for the answer: every refusal of a
    sign-in is answered alike."""


# --- bytes -------------------------------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise Refused("not base64url") from None


# --- the relying party -----------------------------------------------------------------------------------------

def relying_party() -> tuple[str, str]:
    """(rp id, origin) from the public base URL: its host, and its scheme://host[:port] (no default port)."""
    parsed = urllib.parse.urlparse(config.public_base_url())
    host = (parsed.hostname or "").lower()
    port = parsed.port
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return host, f"{parsed.scheme}://{host}" + (f":{port}" if port and port != default else "")


# --- a person's passkeys and the lookup from a credential --------------------------------------------------------

def stored(person: Person) -> dict[str, dict]:
    """The person's passkeys by public id (an empty map stays after the last one is removed)."""
    return dict(person.passkeys.as_dict()) if person.passkeys is not None else {}


def _digest(credential_id: bytes) -> str:
    return b64(hashlib.sha256(credential_id).digest())


def public_id(credential_id: bytes) -> str:
    """A passkey's id in the API (128 bits of the credential id's hash: short, URL-safe, never the id itself)."""
    return _digest(credential_id)[:22]


def claim_key(credential_id: bytes) -> tuple[str, str]:
    """The Claim of a credential: (partition, claim). '#' is never in a tenant id (flows/tenants.py)."""
    digest = _digest(credential_id)
    return f"#passkey-{digest[0]}", CLAIM_PREFIX + digest


def owner(credential_id: bytes) -> tuple[str, str] | None:
    """(tenant, person) whose passkey this credential is, or None: one consistent read."""
    try:
        claim = Claim.get(*claim_key(credential_id), consistent_read=True)
    except DoesNotExist:
        return None
    tenant_id, _, person_id = claim.owner_id.partition("#")
    return tenant_id, person_id


def user_handle(person: Person) -> bytes:
    """WebAuthn's user.id for the person: stable (a device keeps one passkey per account and site), opaque (no
    name, email or id in it) and apart per business, since one human may be staff of two businesses."""
    return hashlib.sha256(f"portal-access staff passkey\n{person.tenant_id}\n{person.person_id}".encode()).digest()


def _descriptors(person: Person) -> list:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor
    found = []
    for entry in stored(person).values():
        transports = [AuthenticatorTransport(t) for t in entry.get("transports") or ()
                      if t in {m.value for m in AuthenticatorTransport}]
        found.append(PublicKeyCredentialDescriptor(id=unb64(entry["cred"]), transports=transports or None))
    return found


# --- challenges ------------------------------------------------------------------------------------------------

def issue(purpose: str, tenant_id: str, subject_id: str, **data) -> bytes:
    """A new challenge for `purpose`, issued for that tenant and subject: its bytes (the token decoded)."""
    return unb64(single_use.issue(KINDS[purpose], tenant_id, subject_id, CHALLENGE_SECONDS, **data))


def challenge_of(client_data_json: str) -> str:
    """The challenge (base64url) the authenticator signed, read from the clientDataJSON it signed."""
    try:
        client = json.loads(unb64(client_data_json))
    except (ValueError, UnicodeDecodeError):
        raise Refused("clientDataJSON is not JSON") from None
    challenge = client.get("challenge") if isinstance(client, dict) else None
    if not isinstance(challenge, str) or not 20 <= len(challenge) <= 100:
        raise Refused("no challenge")
    return challenge


def take(client_data_json: str, purpose: str) -> tuple[Token, bytes]:
    """The challenge a browser's answer signed, if this service issued it for `purpose` and it is unused and
    unexpired; spent now, before the answer is checked (one attempt per challenge). Its Token says for whom."""
    challenge = challenge_of(client_data_json)
    try:
        record = Token.get(token_hash(challenge), consistent_read=True)
    except DoesNotExist:
        raise Refused("unknown challenge") from None
    if record.kind != KINDS[purpose] or record.used_at or record.revoked or record.expires_at < now():
        raise Refused("challenge used, expired or for something else")
    try:
        single_use.spend(record)
    except Error:
        raise Refused("challenge used") from None
    return record, unb64(challenge)


def data_of(record: Token) -> dict:
    return record.data.as_dict() if hasattr(record.data, "as_dict") else dict(record.data or {})


# --- options ------------------------------------------------------------------------------------------------

def _json(options) -> dict:
    from webauthn import options_to_json
    return json.loads(options_to_json(options))


def registration_options(person: Person, business_name: str, challenge: bytes) -> dict:
    """For navigator.credentials.create(): a discoverable credential (resident key required, so it also signs in
    without a username) with user verification required (the device's PIN, fingerprint or face: it can then
    stand in for the password), no attestation (which device it is does not matter here), ES256, EdDSA or RS256,
    and the person's passkeys excluded (a device that has one already says so instead of making a second)."""
    from webauthn import generate_registration_options
    from webauthn.helpers.cose import COSEAlgorithmIdentifier
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=business_name, user_name=person.username or person.email or person.person_id,
        user_id=user_handle(person), user_display_name=person.name or person.username or "", challenge=challenge,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.REQUIRED,
                                                               user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=_descriptors(person),
        supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA,
                                COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256])
    return _json(options)


def assertion_options(challenge: bytes, person: Person | None = None) -> dict:
    """For navigator.credentials.get(). For a person (the second factor): their passkeys, user verification
    preferred (the password was the other factor). For nobody (a sign-in without a password): no list at all,
    whatever username was typed, so the answer says nothing about who has a passkey, and user verification
    required (the passkey is then both factors)."""
    from webauthn import generate_authentication_options
    from webauthn.helpers.structs import UserVerificationRequirement
    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=_descriptors(person) if person is not None else [],
        user_verification=UserVerificationRequirement.PREFERRED if person is not None
        else UserVerificationRequirement.REQUIRED)
    return _json(options)


def factor_options(person: Person, mfa_token: str) -> dict:
    """The options of a sign-in's second step: a challenge for this person and this mfa_token only."""
    challenge = issue("factor", person.tenant_id, person.person_id, mfa=token_hash(mfa_token))
    return assertion_options(challenge, person)


# --- checking what the browser sent ------------------------------------------------------------------------------

@dataclass
class NewPasskey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    backed_up: bool
    transports: list[str]


def check_registration(credential: RegistrationCredential, challenge: bytes) -> NewPasskey:
    """A new passkey, verified by the library (challenge, origin, rp id hash, user present and verified, an
    algorithm we take, the attestation statement's format); Refused otherwise."""
    from webauthn import verify_registration_response
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(credential=credential.model_dump(exclude_none=True),
                                                expected_challenge=challenge, expected_rp_id=rp_id,
                                                expected_origin=origin, require_user_verification=True)
    except Exception as exc:  # noqa: BLE001 - whatever the library cannot verify (CBOR, keys, statements) is refused
        raise Refused(type(exc).__name__) from None
    return NewPasskey(credential_id=verified.credential_id, public_key=verified.credential_public_key,
                      sign_count=verified.sign_count, backed_up=bool(verified.credential_backed_up),
                      transports=[t for t in credential.response.transports or () if t in TRANSPORTS])


def verify_assertion(person: Person, credential: AssertionCredential, challenge: bytes, *,
                     user_verification: bool) -> str:
    """The public id of the person's passkey that signed `challenge`, its counter and last use recorded;
    Refused when it is not one of theirs, the signature, origin, rp id or user handle is wrong, the user was not
    verified where that is required, or the counter went backwards (a cloned authenticator)."""
    from webauthn import verify_authentication_response
    raw_id = unb64(credential.rawId)
    pid = public_id(raw_id)
    entry = stored(person).get(pid)
    if entry is None or entry.get("cred") != b64(raw_id):
        raise Refused("not this person's passkey")
    if credential.response.userHandle and unb64(credential.response.userHandle) != user_handle(person):
        raise Refused("another account's user handle")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential.model_dump(exclude_none=True), expected_challenge=challenge,
            expected_rp_id=rp_id, expected_origin=origin, credential_public_key=unb64(entry["key"]),
            credential_current_sign_count=int(entry.get("count") or 0), require_user_verification=user_verification)
    except Exception as exc:  # noqa: BLE001 - a signature, a counter or a structure the library refuses
        raise Refused(type(exc).__name__) from None
    _record_use(person, pid, entry, int(verified.new_sign_count), bool(verified.credential_backed_up))
    return pid


def _record_use(person: Person, pid: str, entry: dict, count: int, backed_up: bool) -> None:
    """Last use, and the counter moved on by a conditional write (still this credential, counter still below the
    new one), so two answers racing with one counter cannot both pass."""
    path = Person.passkeys[pid]
    actions = [path["used_at"].set(now()), path["backed_up"].set(backed_up)]
    condition = path["cred"] == entry["cred"]
    if count or int(entry.get("count") or 0):
        actions.append(path["count"].set(count))
        condition &= path["count"] < count
    try:
        person.update(actions=actions, condition=condition, add_version_condition=False)
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        raise Refused("counter did not move on, or the passkey was removed meanwhile") from None
