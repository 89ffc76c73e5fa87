"""What the product accepts as an email address or a mobile number (README "What the product accepts"):
email-validator and phonenumbers behind identity.normalise_email / normalise_mobile, at unit level and over the
API. Every spelling of one address or number is one identity; what cannot be delivered to is refused."""
import socket
import uuid

import pytest

from chalicelib.flows.portal import email_scan
from chalicelib.core import identity
from staff_helpers import unique_mobile


@pytest.fixture
def admin(tenant):
    return tenant.admin_token


def problem(body, field):
    assert body["error"]["code"] == "invalid_request", body
    [found] = [f for f in body["error"]["fields"] if f["field"] == field]
    return found["problem"]


# --- email addresses, unit level --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["a..b@x.com", ".ab@x.com", "ab.@x.com", "ab@x..com", "ab@-x.com", "ab@x",
                                 "ab@localhost", "ab@x.test", "\"a b\"@x.com", "ab@[127.0.0.1]", "Ab <ab@x.com>",
                                 "ab@@x.com", "@x.com", "ab@", "a b@x.com", "x" * 250 + "@x.com", ""])
def test_addresses_the_library_refuses_are_refused(raw):
    with pytest.raises(ValueError, match="^not a valid email address"):
        identity.normalise_email(raw)


def test_an_internationalised_part_before_the_at_is_refused_with_the_reason():
    """Amazon SES does not support SMTPUTF8: such an address could be stored but never written to."""
    with pytest.raises(ValueError, match="outside ASCII before the @") as err:
        identity.normalise_email("josé@example.com")
    assert str(err.value).startswith("not a valid email address")


@pytest.mark.parametrize("raw", ["user@bücher.example", "USER@BÜCHER.EXAMPLE", "User@xn--bcher-kva.example",
                                 " user@XN--BCHER-KVA.example "])
def test_an_internationalised_domain_is_one_identity_in_its_ascii_form(raw):
    assert identity.normalise_email(raw) == "user@xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["Ada.Lovelace@Example.COM", "ada.lovelace@example.com", "  ADA.LOVELACE@EXAMPLE.COM\t",
                                 "Ada.Lovelace@example.com"])
def test_case_and_surrounding_space_do_not_make_another_address(raw):
    assert identity.normalise_email(raw) == "ada.lovelace@example.com"


@pytest.mark.parametrize("raw", ["o'neil@example.com", "a+tag@mail.example.org", "x_y-z@a.b.example",
                                 "1@2.example"])
def test_ordinary_addresses_are_kept(raw):
    assert identity.normalise_email(raw) == raw


def test_no_dns_is_ever_asked(monkeypatch):
    """Syntax only: no network in Lambda's or the tests' path (check_deliverability=False)."""
    import dns.resolver

    def refuse(*args, **kwargs):
        raise AssertionError("a DNS lookup was made")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", refuse)
    assert identity.normalise_email("someone@no-such-domain-at-all.example") == \
        "someone@no-such-domain-at-all.example"


def test_the_csv_scanner_uses_the_same_rule():
    valid, invalid = email_scan.addresses('Ada,"a..b@x.com",josé@example.com;<Ok@Bücher.Example>,ok@x.com')
    assert valid == ["ok@xn--bcher-kva.example", "ok@x.com"]
    assert invalid == ["a..b@x.com", "josé@example.com"]


# --- mobile numbers, unit level ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["+999 555 0100", "+9995550100", "+1 555 010 0999", "+1 (555) 201-7788",
                                 "555-010-0999", "+44 7700 900123", "+44 1234 567", "+1 201 555 012"])
def test_numbers_that_do_not_exist_are_refused(raw):
    """A plausible length is not enough: +999 is no country code, 555 no North American area code, +44 7700 900xxx
    a UK range kept for drama."""
    with pytest.raises(ValueError, match="^not a valid phone number"):
        identity.normalise_mobile(raw)


@pytest.mark.parametrize("raw", ["12", "07400 123456", "0044 7400 123456", "011 44 7400 123456", "201555012",
                                 "+1 201 555 0123 ext 5", "tel:+12015550123", "+1 201 CALL NOW", "++12015550123",
                                 "+１２０１５５５０１２３", "+1" + " " * 30 + "2015550123", ""])
def test_numbers_not_in_international_form_are_refused(raw):
    """Without a leading +, only North American numbers (10 digits, or 1 and 10) are taken: no other country is
    guessed. Letters, extensions and digits other than 0-9 are refused rather than read."""
    with pytest.raises(ValueError, match=r"^not a mobile number in international form \(\+12015550123\)"):
        identity.normalise_mobile(raw)


US = ["+12015550123", "+1 201 555 0123", "+1 (201) 555-0123", "(201) 555-0123", "201.555.0123", "201-555-0123",
      "2015550123", "12015550123", "1 201 555 0123", " +1-201-555-0123 "]
UK = ["+447400123456", "+44 7400 123456", "+44 (0)7400 123456", "+44 07400 123456", "+44 7400-123-456",
      "+44.7400.123.456"]


@pytest.mark.parametrize("raw", US)
def test_every_spelling_of_a_us_number_is_one_e164(raw):
    assert identity.normalise_mobile(raw) == "+12015550123"


@pytest.mark.parametrize("raw", UK)
def test_every_spelling_of_a_uk_mobile_is_one_e164(raw):
    assert identity.normalise_mobile(raw) == "+447400123456"


def test_the_test_helpers_make_numbers_that_exist():
    for _ in range(200):
        mobile = unique_mobile()
        assert identity.normalise_mobile(mobile) == mobile


# --- over the API -----------------------------------------------------------------------------------------------

def test_refused_addresses_are_400_on_the_field_with_the_reason(http, admin):
    status, body = http.post("/v1/people", {"kind": "employee", "name": "Dots", "email": "a..b@x.com"}, token=admin)
    assert status == 400 and problem(body, "email") == "Value error, not a valid email address"
    status, body = http.post("/v1/people", {"kind": "employee", "name": "José", "email": "josé@example.com"},
                             token=admin)
    assert status == 400 and "outside ASCII before the @" in problem(body, "email")
    status, body = http.post("/v1/customers", {"name": "Dots", "emails": ["ok@x.com", "a..b@x.com"]}, token=admin)
    assert status == 400 and problem(body, "emails.1").startswith("Value error, not a valid email address")


def test_spellings_of_one_address_are_one_person(http, admin, tenant):
    local = f"ada.{uuid.uuid4().hex[:6]}"
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Ada", "email": f"{local}@Bücher.Example"},
                               token=admin)
    assert status == 201 and person["email"] == f"{local}@xn--bcher-kva.example"
    for spelling in (f"{local.upper()}@BÜCHER.EXAMPLE", f"{local}@xn--bcher-kva.example", f" {local}@bücher.example"):
        status, body = http.post("/v1/people", {"kind": "employee", "name": "Twin", "email": spelling}, token=admin)
        assert status == 409 and body["error"]["code"] == "email_taken", (spelling, body)
    status, customer = http.post("/v1/customers", {"name": "Bücher", "emails": ["Pat@BÜCHER.example"]}, token=admin)
    assert status == 201 and customer["emails"] == ["pat@xn--bcher-kva.example"]


def test_a_number_that_does_not_exist_is_400_on_the_field(http, admin):
    for mobile in ("+999 555 0100", "+1 555 010 0999"):
        status, body = http.post("/v1/people", {"kind": "technician", "name": "Nobody", "mobile": mobile},
                                 token=admin)
        assert status == 400 and problem(body, "mobile").startswith("Value error, not a valid phone number"), body


@pytest.mark.parametrize("spellings, e164", [(US, "+12015550123"), (UK, "+447400123456")])
def test_spellings_of_one_number_are_one_person(http, admin, spellings, e164):
    status, person = http.post("/v1/people", {"kind": "technician", "name": "First", "mobile": spellings[-1]},
                               token=admin)
    assert status == 201 and person["mobile"] == e164
    for spelling in spellings[:-1]:
        status, body = http.post("/v1/people", {"kind": "technician", "name": "Twin", "mobile": spelling},
                                 token=admin)
        assert status == 409 and body["error"]["code"] == "mobile_taken", (spelling, body)


def test_a_portal_user_signs_in_with_any_spelling_of_the_address(app, http, tenant, admin):
    from conftest import drain, links_to
    local = f"kim.{uuid.uuid4().hex[:6]}"
    stored = f"{local}@xn--bcher-kva.example"
    customer = http.post("/v1/customers", {"name": "Kim", "emails": [f"{local}@bücher.example"]}, token=admin)[1]
    assert http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"],
                                                "email": f"{local.upper()}@Bücher.Example"}, token=admin)[0] == 202
    drain(app)
    [link] = links_to(stored, "/register")  # sent to the ASCII form, which SES takes
    assert http.post("/v1/portal/register", {"token": link.split("token=")[1], "password": "Sunny-Porch-2026"})[0] \
        == 200
    for spelling in (stored, f"{local}@BÜCHER.example", f" {local.upper()}@bücher.EXAMPLE "):
        status, body = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": spelling,
                                                        "password": "Sunny-Porch-2026"})
        assert status == 200, (spelling, body)
