"""PUT /v1/portal/settings refuses to switch on a third-party provider that is not set up for this deployment
(400 provider_not_configured, nothing written), so no sign-in page offers a button that cannot work; one already on
can stay on or be switched off."""
from console_helpers import google_only  # noqa: F401 (a fixture: Google set up, Microsoft not)


def put(http, tenant, providers, self_signup=False):
    return http.call("PUT", "/v1/portal/settings", {"self_signup": self_signup, "third_party_signin": providers},
                     token=tenant.admin_token)


def test_a_provider_not_set_up_cannot_be_switched_on(http, tenant, google_only):
    status, body = put(http, tenant, ["microsoft"], self_signup=True)
    assert status == 400 and body["error"]["code"] == "provider_not_configured"
    assert body["error"]["field"] == "third_party_signin" and "Microsoft" in body["error"]["message"]
    assert http.get("/v1/portal/settings", token=tenant.admin_token)[1] == {"self_signup": False,
                                                                           "third_party_signin": []}
    status, body = put(http, tenant, ["google", "microsoft"])
    assert status == 400 and body["error"]["code"] == "provider_not_configured"
    status, body = put(http, tenant, ["google"])
    assert status == 200 and body["third_party_signin"] == ["google"]


def test_without_any_set_up_neither_can_be_switched_on(http, tenant, monkeypatch):
    from chalicelib.flows.portal import oidc
    monkeypatch.setattr(oidc, "secret_name", lambda: "portal-access/local/no-such-oidc-secret")
    for provider in ("google", "microsoft"):
        status, body = put(http, tenant, [provider])
        assert status == 400 and body["error"]["code"] == "provider_not_configured", body
    assert put(http, tenant, [], self_signup=True)[0] == 200


def test_one_already_on_may_stay_on_or_go_off(http, tenant, google_only):
    from chalicelib.core.models import Tenant
    Tenant(tenant.id).update(actions=[Tenant.third_party_signin.set(["microsoft"])])  # set up back then
    status, body = put(http, tenant, ["microsoft"], self_signup=True)
    assert status == 200 and body == {"self_signup": True, "third_party_signin": ["microsoft"]}
    status, body = put(http, tenant, [])
    assert status == 200 and body["third_party_signin"] == []
    assert put(http, tenant, ["microsoft"])[0] == 400
