import base64
import json
import time

import jwt
import pytest

from chalicelib.core.security import keys


def _b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_es256_with_kid_and_jwks_without_private_parts(http, tenant):
    token = tenant.admin_token
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"]
    status, jwks = http.get("/.well-known/jwks.json")
    assert status == 200
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k for k in jwks["keys"])
    # another service can verify offline with the published key
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    claims = jwt.decode(token, public, algorithms=["ES256"], issuer="portal-access")
    assert claims["tid"] == tenant.id and claims["exp"] - claims["iat"] <= 900


def test_rotation_keeps_old_tokens_valid_until_retired(http, tenant):
    old_token = tenant.admin_token
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = keys.rotate()
    try:
        new_token = tenant.admin_token
        assert jwt.get_unverified_header(new_token)["kid"] == new_kid
        assert http.get("/v1/customers", token=old_token)[0] == 200
        kids = {k["kid"] for k in http.get("/.well-known/jwks.json")[1]["keys"]}
        assert {old_kid, new_kid} <= kids
        keys.retire(old_kid)
        assert http.get("/v1/customers", token=old_token)[0] == 401
        assert http.get("/v1/customers", token=new_token)[0] == 200
    finally:
        keys.ensure_signing_key()


@pytest.mark.parametrize("forge", ["alg_none", "bad_signature", "expired", "hs256_with_public_key", "garbage"])
def test_forged_tokens_are_refused(http, tenant, forge):
    good = tenant.admin_token
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    if forge == "alg_none":
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    elif forge == "bad_signature":
        token = f"{header}.{_b64({**claims, 'perms': ['accounts:manage'], 'tid': 'other'})}.{sig}"
    elif forge == "expired":
        token = keys.sign({"sub": claims["sub"], "tid": tenant.id, "typ": "staff", "perms": claims["perms"]}, -10)
    elif forge == "hs256_with_public_key":
        kid = jwt.get_unverified_header(good)["kid"]
        token = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": kid})
    else:
        token = "not.a.jwt"
    status, body = http.get("/v1/customers", token=token)
    assert status == 401, body
    assert body["error"]["code"] in ("invalid_token", "token_expired")


def test_expiry_is_checked(tenant):
    token = keys.sign({"sub": "x", "tid": tenant.id, "typ": "staff"}, 1)
    keys.verify(token)
    time.sleep(2.1)
    with pytest.raises(keys.InvalidToken):
        keys.verify(token)


def test_a_deployed_ring_signs_from_its_seed_until_the_first_rotation(http, tenant):
    """A deployed stage's secret starts as CloudFormation makes it: a random seed and no key (infra/aws.json).
    Sign-in works at once with the key derived from the seed, the same in every process; the first rotation
    keeps that key as a previous key, so tokens signed with it still verify."""
    saved = keys._read_ring_uncached()
    try:
        keys._write_ring({"active_kid": None, "keys": [], "seed": "S" * 20 + "0123456789abcdefghij" + "T" * 24})
        token = tenant.admin_token
        seed_kid = jwt.get_unverified_header(token)["kid"]
        assert seed_kid.startswith("seed-")
        keys._seed_key.cache_clear()  # another process derives the same key
        assert keys._seed_key("S" * 20 + "0123456789abcdefghij" + "T" * 24)["kid"] == seed_kid
        assert http.get("/v1/staff/me", token=token)[0] == 200
        assert seed_kid in {k["kid"] for k in http.get("/.well-known/jwks.json")[1]["keys"]}
        new_kid = keys.rotate()
        assert "seed" not in keys._read_ring_uncached()
        assert http.get("/v1/staff/me", token=token)[0] == 200  # the seed's key now verifies as a previous key
        assert jwt.get_unverified_header(tenant.admin_token)["kid"] == new_kid
    finally:
        keys._write_ring(saved)
