"""The console's Apps section (issue 17): the list (name, who signs in, type, default), Add app (a confidential app's
secret shown once), an app's page (edit name and addresses, Make default, Rotate secret shown once, Delete app behind
a confirmation). Each action is checked through the JSON API afterwards; another business's app answers the 404
page; staff without apps:manage get the 403 page for every action; a POST without its CSRF token does nothing."""
import re

import pytest
from console_helpers import ConsoleClient, admin_console, console, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, staff_member

LIST = "/console/apps"


def api_apps(http, tenant):
    status, body = http.get("/v1/apps", token=tenant.admin_token)
    assert status == 200, body
    return {a["name"]: a for a in body["items"]}


def api_app(http, tenant, name, **fields):
    status, body = http.post("/v1/apps", {"name": name, "audience": "portal", "client_type": "public",
                                          "redirect_uris": ["https://portal.example.com/callback"], **fields},
                             token=tenant.admin_token)
    assert status == 201, body
    return body


def add(c, **fields):
    c.get(f"{LIST}/new")
    form = {"name": "Customer Portal", "audience": "portal", "client_type": "public",
            "redirect_uris": "https://portal.example.com/callback\n\nhttp://127.0.0.1:8400/callback\n",
            "post_logout_redirect_uris": "", "initiate_login_uri": ""}
    return c.post(f"{LIST}/new", {**form, **fields})


def token_for(c, path):
    """A valid CSRF token of this browser for a form posting to `path` (as a page of its own would hold)."""
    from chalicelib.web.pages.serve import _csrf_keys, _csrf_mac
    return _csrf_mac(_csrf_keys()[0], c.cookies["pa_csrf"], path)


def secret_on(page: str) -> str:
    match = re.search(r'id="client-secret" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_the_list_and_the_navigation(admin_console, http, tenant):
    r = admin_console.get(LIST)
    words = visible_text(text(r))
    assert r.status_code == 200 and "No apps yet." in words and "Add app" in words
    assert '<a href="/console/apps" aria-current="page">Apps</a>' in text(r)
    api_app(http, tenant, "Customer Portal")
    api_app(http, tenant, "Technician App", audience="staff", redirect_uris=["com.example.fieldtech:/oauth2redirect"])
    api_app(http, tenant, "Office Server", client_type="confidential")
    words = visible_text(text(admin_console.get(LIST)))
    assert "Customer Portal Customer portal Public Default" in words
    assert "Technician App Staff Public Default" in words
    assert "Office Server Customer portal Confidential No" in words


def test_add_a_public_app(admin_console, http, tenant):
    r = add(admin_console, initiate_login_uri=" http://127.0.0.1:8400/ ",
            post_logout_redirect_uris="http://127.0.0.1:8400/")
    assert r.status_code == 303, visible_text(text(r))
    made = api_apps(http, tenant)["Customer Portal"]
    assert location(r) == f"{LIST}/{made['client_id']}?done=created"
    assert made["redirect_uris"] == ["https://portal.example.com/callback", "http://127.0.0.1:8400/callback"]
    assert made["post_logout_redirect_uris"] == ["http://127.0.0.1:8400/"]
    assert made["initiate_login_uri"] == "http://127.0.0.1:8400/" and made["is_default"]
    words = visible_text(text(admin_console.follow()))
    assert "App added." in words and made["client_id"] in words and "Client secret" not in words


def test_add_a_confidential_app_shows_its_secret_once(admin_console, http, tenant):
    from chalicelib.flows import apps
    r = add(admin_console, name="Office Server", client_type="confidential")
    assert r.status_code == 200
    secret = secret_on(text(r))
    made = api_apps(http, tenant)["Office Server"]
    assert apps.check_secret(apps.find(made["client_id"]), secret)
    assert "it is not shown again" in visible_text(text(r))
    again = text(admin_console.get(f"{LIST}/{made['client_id']}"))
    assert secret not in again and "client-secret" not in again
    assert secret not in text(admin_console.get(LIST))


@pytest.mark.parametrize("fields,words,field", [
    ({"name": ""}, "Enter the app's name.", "name"),
    ({"audience": ""}, "Choose who signs in to this app.", "audience"),
    ({"client_type": "secret"}, "Choose the type of app.", "client_type"),
    ({"redirect_uris": ""}, "An app needs at least one redirect URI.", "redirect_uris"),
    ({"redirect_uris": "http://portal.example.com/cb"}, "must use https", "redirect_uris"),
    ({"redirect_uris": "https://portal.example.com/cb#top"}, "must not have a fragment", "redirect_uris"),
    ({"redirect_uris": "\n".join(f"https://a.example/{i}" for i in range(11))}, "Enter at most 10 redirect URIs.",
     "redirect_uris"),
    ({"post_logout_redirect_uris": "myapp:/bye"}, "The post-logout redirect URI myapp:/bye must use https",
     "post_logout_redirect_uris"),
    ({"initiate_login_uri": "com.example.app:/start"}, "The initiate login URI must use https", "initiate_login_uri"),
    ({"name": "x" * 81}, "This is too long", "name"),
])
def test_add_app_refuses_bad_input_in_words(admin_console, http, tenant, fields, words, field):
    r = add(admin_console, **fields)
    page = text(r)
    assert r.status_code == 400 and words in visible_text(page), visible_text(page)
    assert f'id="{field}-error"' in page and f'href="#{field}"' in page
    assert api_apps(http, tenant) == {}


def test_edit_make_default_and_delete(admin_console, http, tenant):
    first = api_app(http, tenant, "Customer Portal")
    second = api_app(http, tenant, "New Portal")
    path = f"{LIST}/{second['client_id']}"
    r = admin_console.get(path)
    assert r.status_code == 200 and "Make default" in visible_text(text(r))
    r = admin_console.post(path, {"name": "Customer Portal 2", "redirect_uris": "https://new.example.com/cb",
                                  "post_logout_redirect_uris": "https://new.example.com/\nhttps://new.example.com/bye",
                                  "initiate_login_uri": "https://new.example.com/"})
    assert r.status_code == 303 and location(r) == f"{path}?done=saved"
    assert "Changes saved." in visible_text(text(admin_console.follow()))
    now = api_apps(http, tenant)["Customer Portal 2"]
    assert now["redirect_uris"] == ["https://new.example.com/cb"]
    assert now["post_logout_redirect_uris"] == ["https://new.example.com/", "https://new.example.com/bye"]
    assert now["initiate_login_uri"] == "https://new.example.com/"
    # bad input stays in the form, in words
    r = admin_console.post(path, {"name": "Customer Portal 2", "redirect_uris": "ftp://x.example/",
                                  "post_logout_redirect_uris": "", "initiate_login_uri": ""})
    assert r.status_code == 400 and "ftp://x.example/" in text(r) and "must use https" in visible_text(text(r))
    # clearing the initiate login URI
    admin_console.get(path)
    r = admin_console.post(path, {"name": "Customer Portal 2", "redirect_uris": "https://new.example.com/cb",
                                  "post_logout_redirect_uris": "", "initiate_login_uri": ""})
    assert r.status_code == 303 and "initiate_login_uri" not in api_apps(http, tenant)["Customer Portal 2"]

    admin_console.get(path)
    r = admin_console.post(f"{path}/default", {})
    assert r.status_code == 303 and location(r) == f"{path}?done=made_default"
    assert "This app is now the default." in visible_text(text(admin_console.follow()))
    listed = api_apps(http, tenant)
    assert listed["Customer Portal 2"]["is_default"] and not listed["Customer Portal"]["is_default"]

    # the default cannot go while another app of its audience is there: said in words
    r = admin_console.get(f"{path}/delete")
    assert r.status_code == 200 and "Delete Customer Portal 2?" in visible_text(text(r))
    r = admin_console.post(f"{path}/delete", {})
    assert r.status_code == 409 and "Make another customer portal app the default first" in visible_text(text(r))
    other = f"{LIST}/{first['client_id']}"
    admin_console.get(f"{other}/delete")
    r = admin_console.post(f"{other}/delete", {})
    assert r.status_code == 303 and location(r) == f"{LIST}?done=deleted"
    assert "App deleted." in visible_text(text(admin_console.follow()))
    assert set(api_apps(http, tenant)) == {"Customer Portal 2"}
    assert admin_console.get(other).status_code == 404


def test_rotate_secret_shows_the_new_one_once(admin_console, http, tenant):
    from chalicelib.flows import apps
    made = api_app(http, tenant, "Office Server", client_type="confidential")
    path = f"{LIST}/{made['client_id']}"
    page = text(admin_console.get(path))
    assert "Rotate secret" in visible_text(page) and made["client_secret"] not in page
    r = admin_console.post(f"{path}/secret", {})
    assert r.status_code == 200
    secret = secret_on(text(r))
    assert "The old secret has stopped working." in visible_text(text(r))
    stored = apps.find(made["client_id"])
    assert apps.check_secret(stored, secret) and not apps.check_secret(stored, made["client_secret"])
    # the page answering the rotation keeps working: its Save form carries the token of the app's own path
    r = admin_console.post(path, {"name": "Office Server 2", "redirect_uris": "https://portal.example.com/callback",
                                  "post_logout_redirect_uris": "", "initiate_login_uri": ""}, page=text(r))
    assert r.status_code == 303 and location(r) == f"{path}?done=saved"
    assert secret not in text(admin_console.get(path))
    # a public app has no Rotate secret, and a forged POST to it is refused in words
    public = api_app(http, tenant, "Customer Portal")
    page = text(admin_console.get(f"{LIST}/{public['client_id']}"))
    assert "Rotate secret" not in visible_text(page)
    action = f"{LIST}/{public['client_id']}/secret"
    r = admin_console.post(action, {"csrf_token": token_for(admin_console, action)}, csrf=False)
    assert r.status_code == 409 and "A public app has no client secret" in visible_text(text(r))
    assert "client-secret" not in text(r)


def test_another_businesss_app_is_not_found(admin_console, http, other_tenant):
    theirs = api_app(http, other_tenant, "Their Portal", client_type="confidential")
    path = f"{LIST}/{theirs['client_id']}"
    for sub in ("", "/delete", "/default", "/secret"):
        r = admin_console.get(path + sub)
        assert r.status_code == 404 and "App not found" in visible_text(text(r)), sub
    for sub in ("", "/delete", "/default", "/secret"):
        # a valid CSRF token, aimed at the other business's app: still not found, nothing done
        r = admin_console.post(path + sub, {"name": "Mine", "redirect_uris": "https://x.example/",
                                            "csrf_token": token_for(admin_console, path + sub)}, csrf=False)
        assert r.status_code == 404 and "App not found" in visible_text(text(r)), sub
    status, body = http.get(f"/v1/apps/{theirs['client_id']}", token=other_tenant.admin_token)
    assert status == 200 and body["name"] == "Their Portal"
    from chalicelib.flows import apps
    assert apps.check_secret(apps.find(theirs["client_id"]), theirs["client_secret"])


def test_without_apps_manage_every_page_and_action_is_refused(client, http, tenant):
    made = api_app(http, tenant, "Customer Portal", client_type="confidential")
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    assert "Apps" not in visible_text(text(c.get("/console/customers")))
    path = f"{LIST}/{made['client_id']}"
    for page in (LIST, f"{LIST}/new", path, f"{path}/delete"):
        assert c.get(page).status_code == 403, page
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(c.get("/console/customers"))).group(1)
    for action, fields in ((f"{LIST}/new", {"name": "X", "audience": "portal", "client_type": "public",
                                            "redirect_uris": "https://x.example/"}),
                           (path, {"name": "Renamed", "redirect_uris": "https://x.example/"}),
                           (f"{path}/default", {}), (f"{path}/secret", {}), (f"{path}/delete", {})):
        r = c.post(action, {**fields, "csrf_token": token}, csrf=False)
        assert r.status_code == 403, action
    listed = api_apps(http, tenant)
    assert set(listed) == {"Customer Portal"} and listed["Customer Portal"]["redirect_uris"] == [
        "https://portal.example.com/callback"]
    from chalicelib.flows import apps
    assert apps.check_secret(apps.find(made["client_id"]), made["client_secret"])


def test_without_csrf_nothing_happens(admin_console, http, tenant):
    made = api_app(http, tenant, "Office Server", client_type="confidential")
    second = api_app(http, tenant, "Second")
    path = f"{LIST}/{made['client_id']}"
    admin_console.get(f"{LIST}/new")
    r = admin_console.post(f"{LIST}/new", {"name": "Forged", "audience": "portal", "client_type": "public",
                                           "redirect_uris": "https://x.example/", "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 200 and "nothing was done" in visible_text(text(r))
    for action, fields in ((path, {"name": "Forged", "redirect_uris": "https://x.example/"}),
                           (f"{LIST}/{second['client_id']}/default", {}), (f"{path}/secret", {}),
                           (f"{LIST}/{second['client_id']}/delete", {})):
        r = admin_console.post(action, {**fields, "csrf_token": "forged"}, csrf=False)
        assert r.status_code in (200, 303) and "client-secret" not in text(r), action
    listed = api_apps(http, tenant)
    assert set(listed) == {"Office Server", "Second"} and listed["Office Server"]["is_default"]
    from chalicelib.flows import apps
    assert apps.check_secret(apps.find(made["client_id"]), made["client_secret"])


def test_the_activity_reads_in_words(admin_console, http, tenant):
    from chalicelib.web.console import words
    assert words.describe({"action": "app.secret_rotated", "actor": None}) == "App secret replaced by the system"
    assert words.describe({"action": "app.created", "actor": "operator"}) == \
        "App registered by the service operator"
