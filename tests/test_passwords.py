import pytest

from chalicelib.core.security import passwords
from chalicelib.core.security.tokens import new_code, new_token, token_hash


@pytest.mark.parametrize("password, code", [
    ("Short1a", "password_too_short"),
    ("alllowercase12", "password_needs_upper"),
    ("ALLUPPERCASE12", "password_needs_lower"),
    ("NoDigitsHereAtAll", "password_needs_digit"),
    ("Password123", "password_too_common"),
    ("PASSWORD1234", "password_needs_lower"),
])
def test_policy_names_the_rule_that_fails(password, code):
    with pytest.raises(passwords.PolicyViolation) as err:
        passwords.check_policy(password)
    assert err.value.code == code
    assert err.value.message


def test_common_list_is_real_and_case_insensitive():
    common = passwords.common_passwords()
    assert len(common) >= 10_000
    assert "qwertyuiop" in common
    assert "password_too_common" in passwords.policy_failures("Qwertyuiop1") or "qwertyuiop1" not in common
    # a listed password typed with different case is still refused
    listed = next(p for p in common if len(p) >= 10 and any(c.isdigit() for c in p) and p.isalnum()
                  and any(c.isalpha() for c in p))
    mixed = listed[0].upper() + listed[1:]
    assert "password_too_common" in passwords.policy_failures(mixed)


def test_good_password_passes():
    passwords.check_policy("Correct-Horse-42-Battery")


def test_argon2id_with_owasp_parameters():
    h = passwords.hash_password("Correct-Horse-42-Battery")
    assert h.startswith("$argon2id$")
    params = dict(kv.split("=") for kv in h.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2
    assert passwords.verify_password(h, "Correct-Horse-42-Battery")
    assert not passwords.verify_password(h, "correct-horse-42-battery")
    assert not passwords.verify_password(None, "anything")


def test_tokens_are_long_random_and_stored_hashed():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43  # 32 bytes base64url
    assert token_hash(a) != a and len(token_hash(a)) == 64
    code = new_code()
    assert len(code) == 8 and code.isalnum()
