"""Staff sign-in and password change (DESIGN rules 10-12): one answer for every wrong credential, lockout
with back-off, forced change for admin-set and expired passwords."""
from pynamodb.exceptions import DoesNotExist

from chalicelib import audit, lockout, people
from chalicelib.api import ApiError, Principal
from chalicelib.models import Person, Tenant, now
from chalicelib.security import keys, passwords

ACCESS_TOKEN_SECONDS = 15 * 60
CHANGE_TOKEN_SECONDS = 10 * 60
PASSWORD_MAX_AGE_SECONDS = 365 * 24 * 3600
WRONG_CREDENTIALS = ApiError(401, "invalid_credentials", "The username or password is not right.")


def _tenant_active(tenant_id: str) -> bool:
    try:
        return Tenant.get(tenant_id).status == "active"
    except DoesNotExist:
        return False


def access_token(person: Person) -> dict:
    claims = {"sub": person.person_id, "tid": person.tenant_id, "typ": "staff", "role": person.role,
              "perms": people.effective_permissions(person)}
    return {"access_token": keys.sign(claims, ACCESS_TOKEN_SECONDS), "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS}


def _change_token(person: Person, reason: str) -> str:
    # pwd ties the token to the password it was issued for: once the password changes, the token is dead.
    return keys.sign({"sub": person.person_id, "tid": person.tenant_id, "typ": "password_change",
                      "reason": reason, "pwd": _password_fingerprint(person)}, CHANGE_TOKEN_SECONDS)


def _password_fingerprint(person: Person) -> str:
    import hashlib
    return hashlib.sha256((person.password_hash or "").encode()).hexdigest()[:16]


def password_expired(person: Person) -> bool:
    return bool(person.password_set_at) and person.password_set_at + PASSWORD_MAX_AGE_SECONDS < now()


def sign_in(tenant_id: str, username: str, password: str, ip: str | None) -> dict:
    lockout.ensure_not_locked("staff", tenant_id, username)
    person = people.find_by_username(tenant_id, username) if _tenant_active(tenant_id) else None
    # verify_password hashes even when there is no account, so both answers take the same time.
    ok = passwords.verify_password(person.password_hash if person else None, password)
    if not ok or person.account_status not in ("active", "invited"):
        locked_for = lockout.record_failure("staff", tenant_id, username)
        if person is not None:
            audit.record(tenant_id, "staff.sign_in_failed", actor=person.person_id, ip=ip)
            if locked_for:
                audit.record(tenant_id, "staff.locked", actor=person.person_id, ip=ip, seconds=locked_for)
        raise WRONG_CREDENTIALS
    lockout.clear("staff", tenant_id, username)
    if person.temporary_password_expires_at and person.temporary_password_expires_at < now():
        raise ApiError(401, "temporary_password_expired",
                       "This temporary password has expired; ask your admin for a new one.")
    if person.must_change_password:
        raise ApiError(403, "password_change_required", "Choose a new username and password to continue.",
                       change_token=_change_token(person, "admin_set"))
    if password_expired(person):
        raise ApiError(403, "password_expired", "Your password is over a year old; choose a new one.",
                       change_token=_change_token(person, "expired"))
    audit.record(tenant_id, "staff.signed_in", actor=person.person_id, ip=ip)
    return access_token(person)


def change_password(principal: Principal, current_password: str | None, new_password: str,
                    new_username: str | None, ip: str | None) -> dict:
    person = people.get(principal.tenant_id, principal.subject)
    if principal.kind == "password_change":
        if principal.claims.get("pwd") != _password_fingerprint(person):
            raise ApiError(401, "token_used", "This change link was already used; sign in again.")
        if principal.claims.get("reason") == "admin_set" and not new_username:
            raise ApiError(400, "username_required", "Choose your own username as well.", field="new_username")
    elif not passwords.verify_password(person.password_hash, current_password or ""):
        raise ApiError(400, "current_password_wrong", "The current password is not right.",
                       field="current_password")
    try:
        passwords.check_policy(new_password)
    except passwords.PolicyViolation as exc:
        raise ApiError(400, exc.code, exc.message, field="new_password") from None
    if person.password_hash and passwords.verify_password(person.password_hash, new_password):
        raise ApiError(400, "password_reused", "Choose a password different from the current one.",
                       field="new_password")
    set_password(person, new_password, new_username=new_username)
    audit.record(person.tenant_id, "staff.password_changed", actor=person.person_id, ip=ip)
    return access_token(person)


def set_password(person: Person, new_password: str, *, new_username: str | None = None,
                 must_change: bool = False, temporary_for: int | None = None) -> None:
    """Stores a new hash (and optionally a new username, claimed uniquely and the old one released)."""
    from pynamodb.exceptions import TransactWriteError
    from chalicelib import identity
    from chalicelib.models import Claim, transaction
    hash_, at = passwords.hash_password(new_password), now()
    actions = [Person.password_hash.set(hash_), Person.password_set_at.set(at),
               Person.must_change_password.set(must_change), Person.account_status.set("active"),
               Person.updated_at.set(at)]
    actions.append(Person.temporary_password_expires_at.set(at + temporary_for) if temporary_for
                   else Person.temporary_password_expires_at.remove())
    rename = new_username and new_username.strip().lower() != (person.username or "").lower()
    if rename:
        actions.append(Person.username.set(new_username.strip()))
    try:
        with transaction() as tx:
            if rename:
                identity.claim_put(tx, person.tenant_id, "username", new_username, person.person_id)
                if person.username:
                    tx.delete(Claim(person.tenant_id, identity.claim_key("username", person.username)))
            tx.update(person, actions=actions)
    except TransactWriteError:
        raise ApiError(409, "username_taken", "This username is taken; choose another.", field="new_username") from None
    person.refresh(consistent_read=True)
