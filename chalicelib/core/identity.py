"""Normalising identifiers and claiming them uniquely per tenant (emails, usernames, mobiles)."""
import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from chalicelib.core.models import Claim

# email-validator and phonenumbers are imported where they are used: together they take ~190 ms to import, which
# would double the cold start of requests that never read an address (tests/test_project.py keeps them off it).

MAX_EMAIL_CHARS = 254
_SEPARATORS = re.compile(r"[\s().-]")
_MOBILE_MESSAGE = "not a mobile number in international form (+12015550123)"


def normalise_email(value: str) -> str:
    """The canonical key of an email address: as email-validator (syntax only, never DNS) normalises it, with the
    domain in its ASCII (IDNA, `xn--`) form and the whole address in lower case, so every spelling of one address
    is one identity. The part before the @ must be ASCII: Amazon SES, which sends our mail, does not support
    SMTPUTF8 (RFC 6531), so an internationalised local part could be stored but never written to."""
    from email_validator import EmailNotValidError, validate_email
    email = value.strip()
    if len(email) > MAX_EMAIL_CHARS:  # before the library: a scanned "address" can be a megabyte long
        raise ValueError("not a valid email address")
    try:
        valid = validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        if "@" in email and not email.rpartition("@")[0].isascii():
            raise ValueError("not a valid email address: letters outside ASCII before the @ cannot be "
                             "delivered to (our email service does not support internationalised addresses)") \
                from None
        raise ValueError("not a valid email address") from None
    if valid.ascii_email is None:  # set whenever SMTPUTF8 is not allowed; says so to the type checker
        raise ValueError("not a valid email address")
    return valid.ascii_email.lower()


def email_key(value: str) -> str:
    """The key to look an email up under when it is not validated first (sign-in, addresses from SES or an identity
    provider): its canonical form, or, when it is no valid address, the text lower-cased (which finds no one)."""
    try:
        return normalise_email(value)
    except ValueError:
        return value.strip().lower()


def normalise_mobile(value: str) -> str:
    """E.164 of a number that exists (phonenumbers' `is_valid_number`, not just a plausible length). Spaces,
    dots, dashes and brackets may separate the digits; without a leading +, 10 digits (or 1 and 10 digits) are
    taken as North American (+1), and anything else is refused (no guessing of other countries)."""
    import phonenumbers
    text = value.strip()
    if len(text) > 32:
        raise ValueError(_MOBILE_MESSAGE)
    compact = _SEPARATORS.sub("", text)
    if re.fullmatch(r"[0-9]{10}", compact):
        compact = "+1" + compact
    elif re.fullmatch(r"1[0-9]{10}", compact):
        compact = "+" + compact
    if not re.fullmatch(r"\+[1-9][0-9]{6,16}", compact):  # the library says if it exists
        raise ValueError(_MOBILE_MESSAGE)
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number: no such country code, or no such number in that country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The schema says what the validators accept, so clients (and `make fuzz`) know before they send
Email = Annotated[str, AfterValidator(normalise_email),
                  WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_EMAIL_CHARS})]
Mobile = Annotated[str, AfterValidator(normalise_mobile),
                   WithJsonSchema({"type": "string", "minLength": 10, "maxLength": 32,
                                   "description": "E.164 (+12015550123), a number that exists; "
                                                  "10 digits are taken as North American"})]


def claim_key(kind: str, value: str) -> str:
    return f"{kind}#{value.strip().lower()}"


def claim_put(transaction, tenant_id: str, kind: str, value: str, owner_id: str) -> None:
    """Adds a conditional put of the claim to a TransactWrite: the transaction fails if it is taken."""
    transaction.save(Claim(tenant_id, claim_key(kind, value), owner_id=owner_id),
                     condition=Claim.claim.does_not_exist())


def owner_of(tenant_id: str, kind: str, value: str) -> str | None:
    from pynamodb.exceptions import DoesNotExist
    try:
        return Claim.get(tenant_id, claim_key(kind, value), consistent_read=True).owner_id
    except DoesNotExist:
        return None


def owners_of(tenant_id: str, claims: list[tuple[str, str]]) -> list[str | None]:
    """The owner of each (kind, value) claim, in order, read in one consistent BatchGetItem: a lookup that
    finds nothing costs what one that finds something does."""
    found = {c.claim: c.owner_id for c in Claim.batch_get([(tenant_id, claim_key(k, v)) for k, v in claims],
                                                          consistent_read=True)}
    return [found.get(claim_key(k, v)) for k, v in claims]


def taken_claims(exc, claims: list[tuple[str, str]]) -> list[str]:
    """Which of a failed transaction's claims were already taken (cancellation reasons come in item order)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [kind for (kind, _), reason in zip(claims, reasons) if reason and reason.code == "ConditionalCheckFailed"]


# DynamoDB answers a cancelled transaction with one reason per item, and PynamoDB sends the items grouped by
# operation in this order (whatever order they were added in).
_OPERATION_ORDER = {"condition_check": 0, "delete": 1, "save": 2, "update": 3}


def cancellation_codes(exc, items: list[tuple[str, str]]) -> dict[str, str | None]:
    """Each named item's cancellation code (`ConditionalCheckFailed`, `TransactionConflict`, None) from a
    failed transaction; `items` are (operation, name) in the order they were added to the TransactWrite."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    ordered = sorted(items, key=lambda item: _OPERATION_ORDER[item[0]])  # stable: same-operation order kept
    return {name: getattr(reason, "code", None) for (_, name), reason in zip(ordered, reasons)}
