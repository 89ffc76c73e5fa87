"""A staff member's own passkeys (issue 18): register several, name them, rename, remove; and an admin's reset
removes them all (mfa_admin). The ceremonies themselves are passkey_ceremony's.

Registering is two calls: `options` (a challenge for this person, bound to their current password step, for
navigator.credentials.create()), then `add` with what the browser answered and a name. Options, adding and
removing need a sign-in in the last 10 minutes and the policy not `off` (mfa.require_recent_sign_in,
require_enabled), as the authenticator app does; the holder of a setup token (a sign-in that must set up a factor
first) may register one and gets the session. The first factor also makes the ten recovery codes, shown once.

Storage: the passkey on the person (Person.passkeys, by public id) and its credential id as a Claim, written in one
transaction: the claim's condition refuses a credential registered already, by anyone. Up to MAX_PASSKEYS each."""
from typing import Annotated

from pydantic import Field
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import size

from chalicelib.core import tenants
from chalicelib.core.errors import Conflict, Gone, Invalid, NotFound
from chalicelib.core.models import Claim, Person, now, transaction
from chalicelib.core.paging import iso, iso_at
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, mfa_recovery, passkey_ceremony
from chalicelib.flows.staff.passkey_ceremony import MAX_PASSKEYS, PasskeyOptions, RegistrationCredential

Name = Annotated[OneLine, Field(min_length=1, max_length=64)]


class NewPasskey(Strict):
    credential: RegistrationCredential  # what navigator.credentials.create() answered, as JSON
    name: Name | None = None  # "Work phone"; "Passkey 2" when left out


class PasskeyRename(Strict):
    name: Name


class PasskeyOut(Shape):
    id: str
    name: str
    created_at: str
    last_used_at: str | None = None
    backed_up: bool = False  # a synced passkey (iCloud Keychain, Google Password Manager...)


class PasskeyList(Shape):
    items: list[PasskeyOut]


class PasskeyAdded(Shape):
    passkey: PasskeyOut
    # shown once: the first set of recovery codes, when the person had none
    recovery_codes: list[str] | None = None
    # for the holder of a setup token: the session the sign-in was waiting for
    access_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None


def out(pid: str, entry: dict) -> PasskeyOut:
    return PasskeyOut(id=pid, name=entry.get("name") or "Passkey", created_at=iso_at(entry.get("added_at") or 0),
                      last_used_at=iso(entry.get("used_at")), backed_up=bool(entry.get("backed_up")))


def listed(person: Person) -> list[PasskeyOut]:
    """In the order they were added."""
    found = passkey_ceremony.stored(person)
    return [out(pid, entry) for pid, entry in sorted(found.items(), key=lambda kv: (int(kv[1].get("n") or 0),
                                                                                   kv[1].get("added_at") or 0))]


def _full(person: Person) -> None:
    if len(passkey_ceremony.stored(person)) >= MAX_PASSKEYS:
        raise Conflict("too_many_passkeys", f"You have {MAX_PASSKEYS} passkeys, the most one account can have: "
                       "remove one you no longer use first.")


def options(principal: Principal, ip: str | None) -> PasskeyOptions:
    """A challenge for this person (5 minutes, single use, bound to their current password step) and the options
    for navigator.credentials.create()."""
    person = mfa.person_of(principal)
    tenant = tenants.find(person.tenant_id)
    mfa.require_enabled(tenant)
    mfa.require_recent_sign_in(principal)
    _full(person)
    challenge = passkey_ceremony.issue("register", person.tenant_id, person.person_id, bnd=mfa.binding(person))
    business = tenant.name if tenant is not None and tenant.name else "portal-access"
    return PasskeyOptions(options=passkey_ceremony.registration_options(person, business, challenge),
                          expires_in=passkey_ceremony.CHALLENGE_SECONDS)


def expired() -> Gone:
    return Gone("passkey_expired", "This passkey request has expired or was already used: start adding the "
                "passkey again.")


def add(principal: Principal, body: NewPasskey, ip: str | None, user_agent: str | None = None, *,
        session_seconds: int | None = None) -> PasskeyAdded:
    """Checks what the browser made against this person's challenge and keeps the passkey. A setup token's
    holder gets the session their sign-in was waiting for."""
    from chalicelib.flows.staff import staff_signin
    person = mfa.person_of(principal)
    mfa.require_enabled(tenants.find(person.tenant_id))
    mfa.require_recent_sign_in(principal)
    try:
        record, challenge = passkey_ceremony.take(body.credential.response.clientDataJSON, "register")
    except passkey_ceremony.Refused:
        raise expired() from None
    if (record.tenant_id, record.subject_id) != (person.tenant_id, person.person_id) \
            or passkey_ceremony.data_of(record).get("bnd") != mfa.binding(person):
        raise expired()  # another person's challenge, or one from before a password change
    try:
        new = passkey_ceremony.check_registration(body.credential, challenge)
    except passkey_ceremony.Refused:
        raise Invalid("passkey_invalid", "This passkey could not be added: the device's answer did not check out. "
                      "Try again.", field="credential") from None
    _full(person)
    pid = passkey_ceremony.public_id(new.credential_id)
    found = passkey_ceremony.stored(person)
    entry = {"n": max((int(e.get("n") or 0) for e in found.values()), default=0) + 1,  # the order they came in
             "cred": passkey_ceremony.b64(new.credential_id), "key": passkey_ceremony.b64(new.public_key),
             "count": new.sign_count, "name": body.name or f"Passkey {len(found) + 1}",
             "added_at": now(), "backed_up": new.backed_up, "transports": new.transports}
    _save(person, pid, entry, new.credential_id)
    person.refresh(consistent_read=True)
    mfa.record(person, "staff.mfa_passkey_added", ip=ip, passkey=pid)
    mfa.notify(person, "added", "a passkey")
    codes = None if person.recovery_codes else mfa_recovery.generate(person, ip=ip)
    answer = PasskeyAdded(passkey=out(pid, entry), recovery_codes=codes)
    if principal.kind == "mfa_setup":
        session = staff_signin.start_session(person, "password", ip, user_agent, session_seconds,
                                             amr=mfa.AMR_PASSKEY_FACTOR)
        answer = answer.model_copy(update=session)
        staff_signin.record_signed_in(person, ip)
    return answer


def _save(person: Person, pid: str, entry: dict, credential_id: bytes) -> None:
    """The passkey and its claim in one transaction: a credential registered already (here or on anyone) or an
    eleventh passkey added at the same moment is refused."""
    partition, key = passkey_ceremony.claim_key(credential_id)
    first = person.passkeys is None
    try:
        with transaction() as tx:
            tx.save(Claim(partition, key, owner_id=f"{person.tenant_id}#{person.person_id}"),
                    condition=Claim.claim.does_not_exist())
            if first:
                tx.update(person, actions=[Person.passkeys.set({pid: entry})],
                          condition=Person.passkeys.does_not_exist(), add_version_condition=False)
            else:
                tx.update(person, actions=[Person.passkeys[pid].set(entry)],
                          condition=Person.passkeys.exists() & (size(Person.passkeys) < MAX_PASSKEYS),
                          add_version_condition=False)
    except TransactWriteError as exc:
        reasons = [getattr(r, "code", None) for r in getattr(exc, "cancellation_reasons", None) or []]
        if reasons and reasons[0] == "ConditionalCheckFailed":  # puts come before updates in a transaction
            raise Conflict("passkey_exists", "This passkey is already registered.") from None
        raise Conflict("edit_conflict", "Your passkeys changed at the same time; try again.") from None


def rename(principal: Principal, passkey_id: str, body: PasskeyRename, ip: str | None) -> PasskeyOut:
    person = mfa.person_of(principal)
    if passkey_id not in passkey_ceremony.stored(person):
        raise not_found()
    try:
        person.update(actions=[Person.passkeys[passkey_id]["name"].set(body.name)],
                      condition=Person.passkeys[passkey_id].exists(), add_version_condition=False)
    except UpdateError as exc:
        mfa.reraise_unless_refused(exc)
        raise not_found() from None
    person.refresh(consistent_read=True)
    mfa.record(person, "staff.mfa_passkey_renamed", ip=ip, passkey=passkey_id)
    return out(passkey_id, passkey_ceremony.stored(person)[passkey_id])


def not_found() -> NotFound:
    return NotFound("passkey_not_found", "You have no passkey with this id.")


def remove(principal: Principal, passkey_id: str, ip: str | None) -> None:
    """Removes one of the person's passkeys (and its claim): it no longer signs in. The last factor where the
    policy requires one is refused (409 mfa_required_by_policy); the last factor otherwise takes the recovery
    codes with it."""
    person = mfa.person_of(principal)
    mfa.require_recent_sign_in(principal)
    found = passkey_ceremony.stored(person)
    entry = found.get(passkey_id)
    if entry is None:
        raise not_found()
    last = len(found) == 1 and not person.totp_secret
    if last:
        mfa.keep_required(person, tenants.find(person.tenant_id), "add another passkey or an authenticator app first")
    actions = [Person.passkeys[passkey_id].remove()]
    if last:
        actions += [Person.recovery_codes.remove(), Person.recovery_codes_at.remove()]
    partition, key = passkey_ceremony.claim_key(passkey_ceremony.unb64(entry["cred"]))
    try:
        with transaction() as tx:
            tx.delete(Claim(partition, key))
            tx.update(person, actions=actions, condition=Person.passkeys[passkey_id].exists(),
                      add_version_condition=False)
    except TransactWriteError:
        raise not_found() from None  # removed meanwhile
    mfa.record(person, "staff.mfa_passkey_removed", ip=ip, passkey=passkey_id)
    mfa.notify(person, "removed", "a passkey")


def remove_all(person: Person) -> int:
    """Every passkey of the person and their claims (an admin's reset): how many there were."""
    found = passkey_ceremony.stored(person)
    if person.passkeys is None:
        return 0
    with transaction() as tx:
        for entry in found.values():
            tx.delete(Claim(*passkey_ceremony.claim_key(passkey_ceremony.unb64(entry["cred"]))))
        tx.update(person, actions=[Person.passkeys.remove()], add_version_condition=False)
    return len(found)
