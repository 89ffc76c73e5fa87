"""What operators do with partner portals (the console's `partner` commands): define a portal with its
permissions and legal agreement, rotate its client secret, add its users. Not packaged: it ships with ops/."""
import hashlib
import re
import secrets

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.core.identity import normalise_email
from chalicelib.core.models import PartnerClient, PartnerPortal, PartnerUser, now, transaction
from chalicelib.core.security import passwords
from chalicelib.flows.partners import PERMISSIONS, PORTAL_ID, get_item

MAX_AGREEMENT_CHARS = 100_000
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")


class OperatorError(Exception):
    """Bad input to an operator command: the console prints it as one line."""


def check_permissions(keys: list[str]) -> list[str]:
    unknown = [k for k in keys if k not in PERMISSIONS]
    if unknown:
        raise OperatorError(f"unknown permission {unknown[0]!r}; choose from: {', '.join(PERMISSIONS)}")
    if not keys:
        raise OperatorError("a portal needs at least one permission")
    return [k for k in PERMISSIONS if k in set(keys)]


def _check_agreement(version: str, text: str) -> None:
    if not version.strip() or len(version) > 64:
        raise OperatorError("the agreement version must be 1-64 characters")
    if not text.strip():
        raise OperatorError("the agreement text is empty")
    if len(text) > MAX_AGREEMENT_CHARS:
        raise OperatorError(f"the agreement text is over {MAX_AGREEMENT_CHARS} characters")


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def _check_secret(secret: str) -> None:
    if not 16 <= len(secret) <= 256:
        raise OperatorError("a client secret must be 16-256 characters")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]


def create_portal(name: str, permissions: list[str], agreement_version: str, agreement_text: str, *,
                  portal_id: str | None = None, client_id: str | None = None,
                  secret: str | None = None) -> tuple[PartnerPortal, str]:
    """Creates the portal and its credentials; returns the secret, which exists in clear only in this answer."""
    name = name.strip()
    if not name or len(name) > 200:
        raise OperatorError("the name must be 1-200 characters")
    portal_id = portal_id or slug(name)
    client_id = client_id or portal_id
    if not PORTAL_ID.match(portal_id):
        raise OperatorError(f"invalid portal id {portal_id!r}: lower-case letters, digits and -, 2-64 characters")
    if not CLIENT_ID.match(client_id):
        raise OperatorError(f"invalid client id {client_id!r}: letters, digits, '.', '_' and -, 3-128 characters")
    perms = check_permissions(permissions)
    _check_agreement(agreement_version, agreement_text)
    secret = secret or new_secret()
    _check_secret(secret)
    portal = PartnerPortal(portal_id, name=name, permissions=perms, client_id=client_id,
                           agreement_version=agreement_version.strip(), agreement_text=agreement_text)
    client = PartnerClient(client_id, portal_id=portal_id, secret_hash=passwords.hash_password(secret))
    try:
        with transaction() as tx:  # the database keeps both ids unique
            tx.save(portal, condition=PartnerPortal.portal_id.does_not_exist())
            tx.save(client, condition=PartnerClient.client_id.does_not_exist())
    except TransactWriteError:
        taken = f"portal id {portal_id!r}" if get_item(PartnerPortal, portal_id) else f"client id {client_id!r}"
        raise OperatorError(f"{taken} is already taken") from None
    return portal, secret


def operator_portal(portal_id: str) -> PartnerPortal:
    portal = get_item(PartnerPortal, portal_id)
    if portal is None:
        raise OperatorError(f"no partner portal {portal_id!r}")
    return portal


def update_portal(portal_id: str, *, name: str | None = None, permissions: list[str] | None = None,
                  agreement_version: str | None = None, agreement_text: str | None = None) -> PartnerPortal:
    portal = operator_portal(portal_id)
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise OperatorError("the name must be 1-200 characters")
        portal.name = name.strip()
    if permissions is not None:
        portal.permissions = check_permissions(permissions)
    if (agreement_version is None) != (agreement_text is None):
        raise OperatorError("a new agreement needs both its text and its version")
    if agreement_version is not None and agreement_text is not None:  # both or neither, checked above
        _check_agreement(agreement_version, agreement_text)
        # Tenants accepted a version: its text must never change under them.
        if agreement_version.strip() == portal.agreement_version and agreement_text != portal.agreement_text:
            raise OperatorError(f"the agreement text changed: give it a new version (not {portal.agreement_version})")
        portal.agreement_version, portal.agreement_text = agreement_version.strip(), agreement_text
    portal.updated_at = now()
    try:
        portal.save()
    except PutError:
        raise OperatorError("the portal was changed by someone else meanwhile; run the command again") from None
    return portal


def list_portals() -> list[PartnerPortal]:
    return sorted(PartnerPortal.scan(consistent_read=True), key=lambda p: p.name.lower())


def rotate_secret(portal_id: str, secret: str | None = None) -> str:
    """A new secret at once; the old one stops working, and so do tokens minted with it (check_access)."""
    portal = operator_portal(portal_id)
    secret = secret or new_secret()
    _check_secret(secret)
    client = get_item(PartnerClient, portal.client_id) or PartnerClient(portal.client_id, portal_id=portal_id)
    client.secret_hash, client.rotated_at = passwords.hash_password(secret), now()
    portal.secret_rotated_at = client.rotated_at
    try:
        with transaction() as tx:
            tx.save(client)
            tx.save(portal)
    except TransactWriteError:
        raise OperatorError("the portal was changed by someone else meanwhile; run the command again") from None
    return secret


def add_user(portal_id: str, name: str, email: str, status: str = "active") -> PartnerUser:
    operator_portal(portal_id)
    if not name.strip() or len(name) > 200:
        raise OperatorError("the user's name must be 1-200 characters")
    try:
        email = normalise_email(email)
    except ValueError as exc:
        raise OperatorError(f"invalid email {email!r}: {exc}") from None
    # The id derives from the email, so the conditional put itself keeps one user per email per portal.
    user = PartnerUser(portal_id, hashlib.sha256(email.encode()).hexdigest()[:24], name=name.strip(), email=email,
                       status=status)
    try:
        user.save(condition=PartnerUser.user_id.does_not_exist())
    except PutError:
        raise OperatorError(f"{email} is already a user of this portal") from None
    return user
