"""Hypothesis over every request model: random JSON bodies (right and wrong types, unknown fields, huge and
odd strings) sent to every route that takes a body, signed in as the tenant's admin. Whatever arrives, the answer
is never a 5xx and is always either a success or the error envelope."""
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.web.api import ROUTES, Public
from chalicelib.web.lazy import resolve

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=40), st.sampled_from(["", "a@b.example", "+12015550123", "Xx1" * 5, "billing",
                                                            "\x00", "é" * 3, "../../etc", "null"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                           max_size=4), max_leaves=8)


def body_routes(app):
    return [spec for spec in ROUTES if spec.body is not None]


def field_bodies(model):
    names = list(model.model_fields)
    return st.dictionaries(st.sampled_from(names + ["unexpected"]), values, max_size=len(names) + 1)


def test_every_body_route_survives_random_json(app, http, tenant):
    token = tenant.admin_token
    specs = body_routes(app)
    assert len(specs) >= 20

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        for spec in specs:
            body = data.draw(st.one_of(field_bodies(resolve(spec.body)), values), label=f"{spec.method} {spec.path}")
            path = re.sub(r"\{[^}]+\}", "x", spec.path)
            status, answer = http.call(spec.method, path, body=body,
                                       token=None if isinstance(spec.policy, Public) else token)
            assert status < 500, (spec.method, spec.path, body, answer)
            if status >= 400:
                assert isinstance(answer, dict) and set(answer) == {"error"} and answer["error"]["code"], answer
    check()
