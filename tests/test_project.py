"""Project hygiene: what Chalice packages matches what pyproject installs; demo credentials stay local."""
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_requirements_match_pyproject_runtime_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    def norm(items):
        return sorted(re.sub(r"\s+", "", i).lower() for i in items if i)
    assert norm(deps) == norm(reqs)


def test_seed_refuses_any_stage_but_local(monkeypatch):
    from ops import seed
    monkeypatch.setenv("PORTAL_STAGE", "prod")
    with pytest.raises(SystemExit, match="refusing"):
        seed.seed_demo("Demo-Admin-Pass-1")


def test_seed_is_idempotent_and_the_admin_signs_in(http):
    from ops import seed
    first = seed.seed_demo("Demo-Admin-Pass-1")
    again = seed.seed_demo("Demo-Admin-Pass-1")
    assert again["created"] is False
    if first["created"]:
        assert len(first["customers"]) == 3
    status, body = http.post("/v1/staff/sign-in", {"tenant_id": "demo", "username": "admin@demo.example",
                                                   "password": "Demo-Admin-Pass-1"})
    assert status == 200


def test_cold_import_of_app_is_light():
    """The heavy parts stay off the import path every function's cold start takes: the X-Ray SDK, boto3 clients,
    the email and phone number libraries, and (chalicelib/web/lazy.py) the flows with PynamoDB, botocore's clients,
    pydantic and Jinja2, which a request imports when it first needs them; bench measures the time."""
    import subprocess
    import sys
    code = ("import sys, app; heavy = [m for m in ('aws_xray_sdk', 'argon2', 'jwt', 'cryptography', 'email_validator', "
            "'phonenumbers', 'pynamodb', 'botocore.client', 'pydantic', 'jinja2', 'authlib', 'webauthn', 'chalicelib.flows') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PORTAL_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"})
    assert out.stdout.strip() == ""
