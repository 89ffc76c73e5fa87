"""Staff sign-in and password change (DESIGN rules 10-12): one answer for every wrong credential, lockout
with back-off, forced change for admin-set, temporary and expired passwords; `set_password` is the one place
a staff password is stored, and every change is announced to the person (ASVS 2.2.3)."""
from typing import Annotated, Callable

from pydantic import Field, StringConstraints

from chalicelib.core import audit, due, lockout, tenants
from chalicelib.core.errors import Conflict, Error, Forbidden, Gone, Invalid, Unauthenticated
from chalicelib.core.models import Person, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Password, Shape, Strict
from chalicelib.core.security import keys, passwords
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, people

Short = Annotated[OneLine, Field(min_length=1, max_length=256)]


class StaffSignIn(Strict):
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)]
    username: Short
    password: Password


class ChangePassword(Strict):
    current_password: Annotated[str, StringConstraints(strip_whitespace=False, max_length=1024)] | None = None
    new_password: Password
    new_username: Short | None = None


class AccessToken(Shape):
    access_token: str
    token_type: str
    expires_in: int


class StaffMe(Shape):
    person_id: str
    tenant_id: str
    role: str
    permissions: list[str]


ACCESS_TOKEN_SECONDS = 15 * 60
CHANGE_TOKEN_SECONDS = 10 * 60


# Errors are made afresh for every raise: one kept at module level would keep the traceback of its last raise,
# and with it the frames holding the password that was typed, alive in a warm Lambda.
def wrong_credentials() -> Error:
    return Unauthenticated("invalid_credentials", "The username or password is not right.")


def temporary_expired() -> Error:
    return Unauthenticated("temporary_password_expired",
                    "This temporary password has expired; ask your admin for a new one.")


def start_session(person: Person, method: str, ip: str | None, user_agent: str | None,
                  session_seconds: int | None = None, *, amr: list[str] | None = None) -> dict:
    """A new staff session (sessions.py) and its access token. The role and permissions in the token are only
    what the client may show: the guard takes them from the live person on every call. `session_seconds`: a
    longer session than its token (the admin console's, which ends sooner when idle)."""
    from chalicelib.core import sessions
    session = sessions.start(person.tenant_id, "staff", person.person_id, method, ip=ip, user_agent=user_agent,
                             seconds=session_seconds or sessions.STAFF_SESSION_SECONDS, epoch=person.session_epoch)
    claims = {"sub": person.person_id, "tid": person.tenant_id, "typ": "staff", "sid": session.family_id,
              "role": person.role, "perms": people.effective_permissions(person), "amr": amr or ["pwd"]}
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
    return bool(person.password_set_at) and person.password_set_at + due.PASSWORD_MAX_AGE_SECONDS < now()


@lockout.limit_guesses_per_ip("staff-sign-in", "invalid_credentials")
def sign_in(tenant_id: str, username: str, password: str, ip: str | None, user_agent: str | None = None,
            *, to_change_password: bool = False, session_seconds: int | None = None) -> dict:
    """A session, or with `to_change_password` (the hosted change page, where a person changes a password that
    has not expired, e.g. after the expiry warning) only a change token instead: no session is started."""
    # The same work for a known and an unknown username: the same reads (find_by_username reads a person either
    # way), one argon2 verification (against a dummy hash when there is no account), the same writes on failure.
    tenant = tenants.active(tenant_id)
    tenant_active = tenant is not None
    person = people.find_by_username(tenant_id, username)
    if not tenant_active:
        person = None
    # Counted before the password is checked (423 when locked), on the person's username whichever identifier
    # named them, so their username and their email share one allowance.
    lock_key = person.username if person is not None and person.username else username
    counted = lockout.attempt("staff", tenant_id, lock_key)
    # A temporary password the schedule retired replaced the password hash (expiry.py): verify against it
    # instead, still one verification, so that it can be told apart without a second hash.
    retired = person is not None and not person.password_hash and bool(person.expired_temporary_hash)
    stored = (person.expired_temporary_hash if retired else person.password_hash) if person else None
    matched = passwords.verify_password(stored, password)
    if retired and matched:
        # Say so, not "wrong password", so the person knows to ask for a new one (only someone who knows the
        # temporary password learns this). Not a wrong guess: the attempt is given back.
        lockout.release(counted)
        raise temporary_expired()
    ok = matched and not retired
    if not ok or person is None or person.account_status not in ("active", "invited"):
        locked_for = lockout.failed(counted)
        if tenant_active:  # recorded for unknown usernames too (no actor): the same writes either way
            actor = person.person_id if person else None
            audit.record(tenant_id, "staff.sign_in_failed", actor=actor, ip=ip)
            if locked_for:
                audit.record(tenant_id, "staff.locked", actor=actor, ip=ip, seconds=locked_for)
        raise wrong_credentials()
    if person.temporary_password_expires_at and person.temporary_password_expires_at < now():
        lockout.clear("staff", tenant_id, lock_key)
        raise temporary_expired()  # even before the schedule has run
    if mfa.has_factor(person):
        # Not signed in yet: the second factor decides. The attempt is given back, but failures counted before
        # stay counted: only the factor's success clears them, so a right password cannot wipe the count of wrong
        # codes (mfa_signin). No change token either: a forced change ends in a session, so it comes after.
        lockout.release(counted)
        raise mfa.challenge(person, "change" if to_change_password else "session")
    lockout.clear("staff", tenant_id, lock_key)
    return after_factor(person, tenant, ip, user_agent, to_change_password=to_change_password,
                        session_seconds=session_seconds)


def after_factor(person: Person, tenant, ip: str | None, user_agent: str | None, *, to_change_password: bool = False,
                 session_seconds: int | None = None, amr: list[str] | None = None) -> dict:
    """What follows the password (and the second factor, when the person has one): a forced change, the setup-only
    state where the policy requires a factor, or the session."""
    if person.must_change_password:
        # An admin-chosen account (rule 10) needs a new username too; a temporary password only a new password.
        if person.temporary_password_expires_at:
            raise Forbidden("password_change_required", "Choose a new password to continue.",
                           change_token=_change_token(person, "temporary"))
        raise Forbidden("password_change_required", "Choose a new username and password to continue.",
                       change_token=_change_token(person, "admin_set"))
    if password_expired(person):
        raise Forbidden("password_expired", "Your password is over a year old; choose a new one.",
                       change_token=_change_token(person, "expired"))
    if to_change_password:
        return {"change_token": _change_token(person, "chosen")}
    return session_or_setup(person, tenant, "password", ip, user_agent, session_seconds, amr=amr)


def session_or_setup(person: Person, tenant, method: str, ip: str | None, user_agent: str | None,
                     session_seconds: int | None = None, *, amr: list[str] | None = None,
                     signed_in: bool = True) -> dict:
    """The session; or, where the business requires a second factor and the person has none, 403
    mfa_setup_required with a token that can only set one up (mfa.setup_required): no session before it.
    `signed_in`: audited as a sign-in (not after a password change or an accepted invitation, audited as such)."""
    if mfa.required_for(person, tenant) and not mfa.has_factor(person):
        raise mfa.setup_required(person)
    if signed_in:
        record_signed_in(person, ip)
    return start_session(person, method, ip, user_agent, session_seconds, amr=amr)


def record_signed_in(person: Person, ip: str | None) -> None:
    audit.record(person.tenant_id, "staff.signed_in", actor=person.person_id, ip=ip)


def caught(check: Callable[[], None]) -> list[Error]:
    """The refusal a check raises, as a list (empty when it passes). Its traceback is dropped: kept, it would keep
    the check's frames, and with them the password that was typed, for as long as the error lives."""
    try:
        check()
    except Error as err:
        return [err.with_traceback(None)]
    return []


def refuse(problems: list[Error]) -> None:
    """Every problem of a form at once (issue 20): the first one's code, field and message, as a client read them
    before, and `fields` listing each problem (field, code, problem), one per field, so a client or the hosted
    page can show every one next to its field."""
    if not problems:
        return
    first, seen, fields = problems[0], set(), []
    for err in problems:
        name = err.extra.get("field")
        if name not in seen:
            seen.add(name)
            fields.append({"field": name, "code": err.code, "problem": err.message})
    raise type(first)(first.code, first.message, **{**first.extra, "fields": fields})


def new_password_problems(person: Person, new_password: str, field: str, confirm: str | None = None) -> list[Error]:
    """The new password against the policy, then against the current one (400 password_reused: one rule for
    every reset and change), and its confirmation when the form has one."""
    problems = caught(lambda: check_policy(new_password, field))
    if not problems and person.password_hash and passwords.verify_password(person.password_hash, new_password):
        problems.append(Invalid("password_reused", "Choose a password different from the current one.",
                                 field=field))
    if confirm is not None and confirm != new_password:
        problems.append(Invalid("passwords_differ", "The two passwords are not the same.",
                                 field=f"{field}_confirm"))
    return problems


def check_policy(password: str, field: str) -> None:
    """The password policy, as a field's error (400 with the policy's code)."""
    try:
        passwords.check_policy(password)
    except passwords.PolicyViolation as exc:
        raise Invalid(exc.code, exc.message, field=field) from None


def change_password(principal: Principal, current_password: str | None, new_password: str,
                    new_username: str | None, ip: str | None, user_agent: str | None = None, *,
                    new_password_confirm: str | None = None, session_seconds: int | None = None) -> dict:
    """Every field is checked and every problem answered at once (refuse); a wrong current password or a used
    change token is answered alone, before anything else."""
    person = people.get(principal.tenant_id, principal.subject)
    if person.account_status != "active":  # a verified (activated) account, not a disabled one
        raise Forbidden("account_not_active", "This account is not active.")
    problems: list[Error] = []
    if principal.kind == "password_change":
        if principal.claims.get("pwd") != _password_fingerprint(person):
            raise Unauthenticated("token_used", "This change link was already used; sign in again.")
        if principal.claims.get("reason") == "admin_set":
            # DESIGN rule 10: an admin chose both, so the person replaces both.
            if not new_username:
                problems.append(Invalid("username_required", "Choose your own username as well.",
                                         field="new_username"))
            elif new_username.strip().lower() == (person.username or "").lower():
                problems.append(Invalid("username_unchanged", "Choose a username other than the one you were "
                                         "given.", field="new_username"))
    else:  # a wrong current password counts towards the sign-in lockout, counted before it is checked
        name = person.username or person.person_id
        counted = lockout.attempt("staff", person.tenant_id, name)
        if not passwords.verify_password(person.password_hash, current_password or ""):
            locked_for = lockout.failed(counted)
            if locked_for:
                audit.record(person.tenant_id, "staff.locked", actor=person.person_id, ip=ip, seconds=locked_for)
            raise Invalid("current_password_wrong", "The current password is not right.",
                           field="current_password")
        lockout.clear("staff", person.tenant_id, name)
    if new_username is not None and not problems:
        problems += caught(lambda: people.check_username(person, new_username, field="new_username"))
    refuse(problems + new_password_problems(person, new_password, "new_password", new_password_confirm))
    set_password(person, new_password, new_username=new_username)
    audit.record(person.tenant_id, "staff.password_changed", actor=person.person_id, ip=ip)
    notify_password_changed(person, "changed")
    # every earlier session ended with the change; a change token came after the factor (sign_in), and where a
    # factor is required and missing, setting one up comes next
    return session_or_setup(person, tenants.find(person.tenant_id), "password", ip, user_agent, session_seconds,
                            signed_in=False)


def set_password(person: Person, new_password: str, *, new_username: str | None = None,
                 must_change: bool = False, temporary_for: int | None = None,
                 username_field: str = "new_username", ended_by: str | None = None) -> None:
    """Stores a new hash (and optionally a new username, claimed uniquely and the old one released). A new
    password also ends every session of the person (in the same write), any pending invitation, reset link,
    retired temporary password and sign-in lockout. `ended_by`: who set it, for the audit trail."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.core import identity, lockout, single_use
    from chalicelib.core.models import Claim, transaction
    hash_, at = passwords.hash_password(new_password), now()
    stale_links = [h for h in (person.invitation_token_hash, person.reset_link_token_hash) if h]
    actions = [Person.password_hash.set(hash_), Person.password_set_at.set(at),
               Person.must_change_password.set(must_change), Person.account_status.set("active"),
               Person.updated_at.set(at), Person.invitation_token_hash.remove(),
               Person.invitation_expires_at.remove(), Person.reset_link_token_hash.remove(),
               Person.expired_temporary_hash.remove(), Person.session_epoch.add(1)]
    actions.append(Person.temporary_password_expires_at.set(at + temporary_for) if temporary_for
                   else Person.temporary_password_expires_at.remove())
    # the schedule's index: this password's expiry or its warning falls due
    actions += due.due_actions(person, password_hash=hash_, password_set_at=at, must_change_password=must_change,
                                  account_status="active", invitation_expires_at=None,
                                  temporary_password_expires_at=at + temporary_for if temporary_for else None)
    new_name = new_username.strip() if new_username else None
    rename = new_name if new_name is not None and new_name.lower() != (person.username or "").lower() else None
    if rename is not None:
        actions.append(Person.username.set(rename))
    items = []  # what each transaction item is, in order, to explain a cancellation
    try:
        with transaction() as tx:
            if rename is not None:  # claim_key strips the name, so the claim is the same as for new_username
                identity.claim_put(tx, person.tenant_id, "username", rename, person.person_id)
                items.append(("save", "username"))
                if person.username:
                    tx.delete(Claim(person.tenant_id, identity.claim_key("username", person.username)))
                    items.append(("delete", "old_username"))
            tx.update(person, actions=actions)
            items.append(("update", "person"))
    except TransactWriteError as exc:
        reasons = identity.cancellation_codes(exc, items)
        if reasons.get("username") == "ConditionalCheckFailed":
            raise Conflict("username_taken", "This username is taken; choose another.",
                           field=username_field) from None
        raise Conflict("edit_conflict", "Someone else changed this account at the same time; try again.") \
            from None
    old_username, had_password = person.username, bool(person.password_hash)
    person.refresh(consistent_read=True)
    if had_password:  # an account that could have sessions: say in its trail that they ended, and who did it
        audit.record(person.tenant_id, "session.ended_all", actor=ended_by or person.person_id,
                     target=person.person_id, reason="password_set")
    for hashed in stale_links:  # the consumed link is already used; every other pending link stops working
        single_use.revoke(hashed)
    for name in {old_username, person.username} - {None}:
        lockout.clear("staff", person.tenant_id, name)


def set_password_with_link(person: Person, new_password: str, link, **options) -> None:
    """set_password for the holder of an invitation or reset link (`link`: its Token, already looked up).

    The link is consumed first by one conditional write, so of concurrent uses exactly one gets past it (a
    single-item condition is atomic everywhere; moto's transactions are not under concurrency). If setting the
    password then fails (the username was taken meanwhile, a concurrent edit), the link is given back."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.core.models import Token
    at = now()
    try:
        link.update(actions=[Token.used_at.set(at)],
                    condition=Token.used_at.does_not_exist() & Token.revoked.does_not_exist()
                    & (Token.expires_at >= at))
    except UpdateError:
        raise Gone("token_used", "This link was already used.") from None
    try:
        set_password(person, new_password, **options)
    except Exception:
        try:
            link.update(actions=[Token.used_at.remove()], condition=Token.used_at == at)
        except UpdateError:
            pass  # someone revoked it meanwhile: it stays dead
        raise


# How the password-changed notice describes what happened.
CHANGE_REASONS = {
    "changed": "Your password was changed.",
    "reset": "Your password was reset with the forgot-password steps.",
    "reset_link": "Your password was reset with a link your administrator sent you.",
    "temporary": "An administrator set a temporary password on your account.",
}


def notify_password_changed(person: Person, how: str) -> None:
    """ASVS 2.2.3: after any change or reset, tell the person on the channel they have (email first), so a
    change they did not make does not go unnoticed. The notice carries no secret."""
    from datetime import datetime, timezone
    when = datetime.fromtimestamp(now(), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    people.send(person, "password-changed", [], what=CHANGE_REASONS[how], when=when)
