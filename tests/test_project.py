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


def test_every_lazy_flow_name_the_web_layer_uses_exists():
    """mypy sees a lazily imported flow as Any (chalicelib/web/lazy.py): a misspelt function or shape would
    fail only at its route's first request. Every `flow.name` and `flow.shape("Name")` of the web layer is checked
    here against the module it names."""
    import ast
    import importlib
    missing, checked = [], 0
    for path in sorted((ROOT / "chalicelib" / "web").rglob("*.py")):
        tree = ast.parse(path.read_text())
        lazies = {node.targets[0].id: node.value.args[0].value for node in tree.body
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "id", None) == "lazy"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in lazies:
                names = [node.attr]
                if node.attr == "shape":
                    continue  # the name is the call's argument, below
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "shape"
                  and isinstance(node.func.value, ast.Name) and node.func.value.id in lazies):
                names = [node.args[0].value]
                node = node.func
            else:
                continue
            module = importlib.import_module(lazies[node.value.id])
            for name in names:
                checked += 1
                if not hasattr(module, name):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {module.__name__}.{name}")
    assert checked > 200 and missing == []
