"""Normalising identifiers and claiming them uniquely per tenant (emails, usernames, mobiles)."""
import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from chalicelib.core.models import Claim

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
E164_RE = re.compile(r"^\+[1-9]\d{7,14}$")


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise ValueError("not a valid email address")
    return email


def normalise_mobile(value: str) -> str:
    """E.164: keep the leading + and digits; a 10-digit number is taken as North American (+1)."""
    digits = re.sub(r"[\s().-]", "", value.strip())
    if re.fullmatch(r"\d{10}", digits):
        digits = "+1" + digits
    elif re.fullmatch(r"1\d{10}", digits):
        digits = "+" + digits
    if not E164_RE.match(digits):
        raise ValueError("not a mobile number in international form (+15551234567)")
    return digits


# The schema says what the validators accept, so clients (and `make fuzz`) know before they send
Email = Annotated[str, AfterValidator(normalise_email),
                  WithJsonSchema({"type": "string", "format": "email", "maxLength": 254})]
Mobile = Annotated[str, AfterValidator(normalise_mobile),
                   WithJsonSchema({"type": "string", "minLength": 10, "maxLength": 32,
                                   "description": "E.164 (+15551234567); 10 digits are taken as North American"})]


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
