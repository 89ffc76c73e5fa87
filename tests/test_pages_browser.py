"""The hosted pages in a real browser: Debian's Chromium (/usr/bin/chromium, never a downloaded build) driven by
Playwright, against the app served over HTTP in this test process (chalice's local server in a thread, talking
to this process's moto server). Links are read from the outbox exactly as a person would click them.

Every page is also saved as a screenshot under docs/screens/ (1280 px wide; the register page at 320 px too).
Only this module writes there, so parallel workers (pytest -n 2 --dist loadfile) never race on the files."""
import re

import pytest
from browser_helpers import SCREENS, assert_secure, browser, page, server, shot  # noqa: F401 (fixtures)
from conftest import drain, links_to, make_tenant, outbox_for
from playwright.sync_api import expect

BUSINESS = "Brightwater Plumbing & Heating"
PASSWORD = "Maple-Street-2040"
NEW_PASSWORD = "Harbour-Lights-77"


@pytest.fixture
def business(http):
    return make_tenant(http, name=BUSINESS)


def open_link(page, link, path):
    """Opens a link from a message: the first answer is a 303 that takes the token out of the URL."""
    response = page.goto(link)
    assert page.url.endswith(path) and "token" not in page.url, page.url
    first = response.request.redirected_from
    assert first is not None and "token=" in first.url and first.response().status == 303
    assert_secure(first.response())
    assert_secure(response)
    return response


def field_error(page, name):
    return page.locator(f"#{name}-error")


# --- customer portal ---------------------------------------------------------------------------------------------

def invite(app, http, business, email, name="Lee Household"):
    token = business.admin_token
    status, customer = http.post("/v1/customers", {"name": name, "emails": [email]}, token=token)
    assert status == 201, customer
    status, body = http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email},
                             token=token)
    assert status == 202, body
    drain(app)
    return links_to(email, "/register?token=")[-1]


def test_register_from_the_invitation_fail_the_policy_then_sign_in(app, http, business, page, server):
    email = "jordan.lee@example.com"
    link = invite(app, http, business, email)
    assert link.startswith(server + "/register?token=")

    open_link(page, link, "/register")
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    assert page.locator(".tenant").inner_text() == BUSINESS and email in page.inner_text("main")
    assert "At least 10 characters" in page.locator("#password-rules").inner_text()  # before typing
    # the account's username is in the form (hidden), so a password manager stores the password with it
    username = page.locator("form #account-username")
    assert username.get_attribute("autocomplete") == "username" and username.input_value() == email
    expect(username).to_be_hidden()
    assert not [m for m in page.console_messages if "should have (optionally hidden) username" in m]
    button_bg = page.eval_on_selector("button[type=submit]", "b => getComputedStyle(b).backgroundColor")
    assert button_bg == "rgb(11, 92, 173)"  # the stylesheet applied under the CSP
    shot(page, "register")

    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # no sideways scrolling
    shot(page, "register-320")
    page.set_viewport_size({"width": 1280, "height": 900})

    # keyboard only: skip link, then the fields, each with a visible focus ring
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.type("lowercase-only-1")
    page.keyboard.press("Tab")  # "Show password", reached and used by keyboard too
    assert page.evaluate("document.activeElement.className") == "reveal"
    page.keyboard.press("Space")
    assert page.get_attribute("#password", "type") == "text"
    assert page.evaluate("document.activeElement.getAttribute('aria-pressed')") == "true"
    page.keyboard.press("Space")
    assert page.get_attribute("#password", "type") == "password"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password_confirm"
    page.keyboard.type("lowercase-only-1")
    page.keyboard.press("Enter")

    page.wait_for_selector("#password-error")
    assert field_error(page, "password").inner_text() == "The password needs an upper case letter."
    password = page.locator("#password")
    assert password.get_attribute("aria-invalid") == "true"
    assert "password-error" in password.get_attribute("aria-describedby")
    assert password.input_value() == "" and page.locator("#password_confirm").input_value() == ""
    summary = page.locator("#error-summary")
    assert summary.get_attribute("aria-live") == "assertive" and "upper case" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "password"  # focus lands on the field to fix
    shot(page, "register-error")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    shot(page, "register-done")

    page.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(f"{server}/sign-in?tenant_id={business.id}")
    expect(page.get_by_role("link", name="Can't sign in?")).to_be_visible()
    assert page.get_by_text("Continue with").count() == 0  # the business allows no third-party sign-in
    shot(page, "sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()

    # the same link again: an explanation and the next step, not an error dump
    response = page.goto(link)
    assert response.status == 410
    expect(page.get_by_role("heading", name="This link was already used")).to_be_visible()
    assert page.get_by_role("link", name="Sign in").get_attribute("href") == f"/sign-in?tenant_id={business.id}"
    assert_secure(response)
    shot(page, "link-used")


def test_continue_with_google_comes_back_to_a_page(http, business, page, server):
    """The sign-in page's "Continue with Google", through a real OpenID provider on loopback, ends on a page."""
    from oidc_provider import Provider, install
    provider = Provider()
    try:
        install(provider)
        email = "casey.morgan@example.com"
        token = business.admin_token
        assert http.post("/v1/customers", {"name": "Morgan Household", "emails": [email]}, token=token)[0] == 201
        http.call("PUT", "/v1/portal/settings", {"self_signup": False, "third_party_signin": ["google"]},
                  token=token)
        provider.user = {"sub": "g-browser", "email": email, "email_verified": True}
        page.goto(f"/sign-in?tenant_id={business.id}")
        page.get_by_role("link", name="Continue with Google").click()
        expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
        assert email in page.inner_text("main") and "with Google" in page.inner_text("main")
        assert "access_token" not in page.content()
        shot(page, "google-signed-in")

        provider.user = {"sub": "g-stranger", "email": "stranger@elsewhere.example", "email_verified": True}
        page.goto(f"/sign-in?tenant_id={business.id}")
        page.get_by_role("link", name="Continue with Google").click()
        expect(page.get_by_role("heading", name="We could not sign you in with Google")).to_be_visible()
        page.get_by_role("link", name="Back to sign-in").click()
        expect(page).to_have_url(f"{server}/sign-in?tenant_id={business.id}")
    finally:
        provider.stop()


def test_portal_reset_by_link(app, http, business, page, server):
    email = "sam.rivera@example.com"
    link = invite(app, http, business, email, name="Rivera Residence")
    token = link.split("token=")[1]
    assert http.post("/v1/portal/register", {"token": token, "password": PASSWORD})[0] == 200

    page.goto(f"/sign-in?tenant_id={business.id}")
    page.get_by_role("link", name="Can't sign in?").click()
    expect(page.get_by_role("heading", name="Can't sign in?")).to_be_visible()
    shot(page, "reset-request")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shot(page, "reset-sent")

    drain(app)
    reset_link = links_to(email, "/reset-password?token=")[-1]
    # clicked in a webmail page: a navigation another site starts (Chromium then withholds SameSite=Strict
    # cookies from every request of it, the 303 included; the token's cookie is Lax so the page still works)
    page.route("http://webmail.test/**", lambda route: route.fulfill(
        content_type="text/html", body=f'<a id="reset" href="{reset_link}">Choose a new password</a>'))
    page.goto("http://webmail.test/inbox")
    with page.expect_navigation(url=f"{server}/reset-password"):
        page.click("#reset")
    assert "token" not in page.url
    assert email in page.inner_text("main") and "A digit" in page.inner_text("#password-rules")
    shot(page, "reset-password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Your password was changed")).to_be_visible()
    shot(page, "reset-done")

    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()


# --- staff ------------------------------------------------------------------------------------------------------

def test_staff_accept_invite_from_an_sms_link(app, http, business, page, server):
    token = business.admin_token
    mobile = "+12015550123"
    status, person = http.post("/v1/people", {"kind": "technician", "name": "Casey Tran", "mobile": mobile},
                               token=token)
    assert status == 201, person
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=token)[0] == 202
    drain(app)
    assert outbox_for(mobile)[-1]["channel"] == "sms"
    link = links_to(mobile, "/staff/accept-invite?token=")[-1]

    open_link(page, link, "/staff/accept-invite")
    assert "Welcome, Casey Tran" in page.inner_text("main")
    assert page.get_by_label("Username").input_value() == ""  # no email to suggest: only a mobile
    shot(page, "staff-accept-invite")

    page.get_by_label("Username").fill("casey.tran")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD + "!")
    page.get_by_role("button", name="Create account").click()
    assert field_error(page, "password_confirm").inner_text() == "The two passwords are not the same."
    assert page.get_by_label("Username").input_value() == "casey.tran"  # what was typed stays, but passwords

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    assert "Your username is casey.tran" in page.inner_text("main")
    shot(page, "staff-accept-invite-done")
    assert business.sign_in("casey.tran", PASSWORD)[0] == 200


def test_staff_code_reset_with_the_code_from_the_outbox(app, http, business, page, server):
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    mobile = "+12015550156"
    people.create(business.id, kind="technician", name="Alex Moreno", email="alex.moreno@example.com",
                  mobile=mobile, role="technician", username="alex.moreno",
                  password_hash=passwords.hash_password(PASSWORD))

    page.goto(f"/staff/reset-password?tenant_id={business.id}")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    shot(page, "staff-reset-identifier")
    page.get_by_label("Username, email address or mobile number").fill("alex.moreno")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Verify your account")).to_be_visible()
    assert "tenant_id" not in page.url and "flow" not in page.url
    shot(page, "staff-reset-channel")
    page.get_by_label("Text message (SMS)").check()
    page.get_by_role("button", name="Send the code").click()
    expect(page.get_by_role("heading", name="Enter the code")).to_be_visible()
    shot(page, "staff-reset-code")

    drain(app)
    code = re.search(r"code: (\S+) \(case-sensitive", outbox_for(mobile)[-1]["body"]).group(1)
    page.get_by_label("Code").fill(code.swapcase())  # case matters
    page.get_by_role("button", name="Check the code").click()
    assert field_error(page, "code").inner_text() == "That code is not right. You have 4 tries left."
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Check the code").click()

    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    shot(page, "staff-reset-new")
    page.get_by_label("New password", exact=True).fill("password")
    page.get_by_label("Type the new password again").fill("password")
    page.get_by_role("button", name="Change password").click()
    assert "at least 10 characters" in field_error(page, "new_password").inner_text()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Your password was changed")).to_be_visible()
    assert business.sign_in("alex.moreno", NEW_PASSWORD)[0] == 200


def test_staff_forced_change_at_first_sign_in(app, http, business, page, server):
    token = business.admin_token
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Morgan Blake",
                                              "email": "morgan.blake@example.com"}, token=token)
    assert status == 201
    status, body = http.post(f"/v1/people/{person['person_id']}/account",
                             {"username": "mblake-temp", "password": PASSWORD}, token=token)
    assert status == 201, body

    page.goto(f"/staff/change-password?tenant_id={business.id}")
    shot(page, "staff-change-sign-in")
    page.get_by_label("Username").fill("mblake-temp")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(f"{server}/staff/change-password")
    assert "Your administrator chose your username and password" in page.inner_text("main")
    shot(page, "staff-change-password")
    page.get_by_label("Your username").fill("mblake-temp")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert "other than the one you were given" in field_error(page, "new_username").inner_text()

    page.get_by_label("Your username").fill("morgan.blake")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Your password was changed")).to_be_visible()
    assert "Your username is now morgan.blake" in page.inner_text("main")
    assert business.sign_in("morgan.blake", NEW_PASSWORD)[0] == 200


def test_accept_invite_shows_every_error_at_once_and_offers_no_email_to_a_technician_without_one(
        app, http, business, page, server):
    token = business.admin_token
    mobile = "+12015550177"
    status, person = http.post("/v1/people", {"kind": "technician", "name": "Dana Wu", "mobile": mobile},
                               token=token)
    assert status == 201, person
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=token)[0] == 202
    drain(app)
    open_link(page, links_to(mobile, "/staff/accept-invite?token=")[-1], "/staff/accept-invite")
    assert "email" not in page.locator("#username-hint").inner_text()  # Dana has only a mobile number
    page.get_by_label("Username").fill("dana wu")
    page.get_by_label("Password", exact=True).fill("alllowercase")
    page.get_by_label("Type the password again").fill("alllowercase")
    page.get_by_role("button", name="Create account").click()
    for name in ("username", "password"):  # both, next to their fields, and both in the summary
        expect(field_error(page, name)).to_be_visible()
    assert "upper case" in field_error(page, "password").inner_text()
    assert page.locator("#error-summary li").count() == 2
    assert page.evaluate("document.activeElement.id") == "username"  # focus on the first to fix
    shot(page, "staff-accept-invite-errors")


def test_a_technicians_reset_by_mobile_preselects_sms_and_the_forced_change_hint(app, http, business, page, server):
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    mobile = "+12015550188"
    people.create(business.id, kind="technician", name="Lee Park", mobile=mobile, role="technician",
                  username="lee.park", password_hash=passwords.hash_password(PASSWORD))
    page.goto(f"/staff/reset-password?tenant_id={business.id}")
    page.get_by_label("Username, email address or mobile number").fill("(201) 555-0188")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Verify your account")).to_be_visible()
    expect(page.get_by_label("Text message (SMS)")).to_be_checked()  # what was typed names the channel
    page.get_by_role("button", name="Send the code").click()  # nothing else to choose
    expect(page.get_by_role("heading", name="Enter the code")).to_be_visible()
    drain(app)
    assert outbox_for(mobile)[-1]["channel"] == "sms"

    status, tech = http.post("/v1/people", {"kind": "technician", "name": "Rae Cole", "mobile": "+12015550199"},
                             token=business.admin_token)
    assert http.post(f"/v1/people/{tech['person_id']}/account", {"username": "rae-given", "password": PASSWORD},
                     token=business.admin_token)[0] == 201
    page.goto(f"/staff/change-password?tenant_id={business.id}")
    page.get_by_label("Username").fill("rae-given")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    hint = page.locator("#new_username-hint").inner_text()
    assert hint.startswith("Not the one you were given.") and "email" not in hint


def test_show_password_on_every_password_field_and_a_normal_field_without_javascript(browser, business, page,
                                                                                     server):
    page.goto(f"/sign-in?tenant_id={business.id}")
    password = page.get_by_label("Password", exact=True)
    show = page.get_by_role("button", name="Show password")
    expect(show).to_be_visible()
    assert show.get_attribute("aria-controls") == "password" and show.get_attribute("aria-pressed") == "false"
    password.fill("Typed-Secret-1")
    show.click()
    assert password.get_attribute("type") == "text" and show.get_attribute("aria-pressed") == "true"
    assert password.input_value() == "Typed-Secret-1"
    shot(page, "show-password")
    show.click()
    assert password.get_attribute("type") == "password" and show.get_attribute("aria-pressed") == "false"
    show.click()
    page.get_by_label("Email address").fill("someone@example.com")
    page.get_by_role("button", name="Sign in", exact=True).click()  # sent as a password field again
    expect(page.locator("#error-summary")).to_contain_text("not right")
    assert page.get_attribute("#password", "type") == "password"

    context = browser.new_context(java_script_enabled=False, base_url=server)
    try:
        plain = context.new_page()
        plain.goto(f"/sign-in?tenant_id={business.id}")
        assert plain.get_attribute("#password", "type") == "password"
        assert plain.get_by_role("button", name="Show password").count() == 0  # hidden: nothing that does not work
    finally:
        context.close()


def test_the_front_page_the_business_id_and_the_favicon(business, page, server):
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    response = page.goto("/")
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert_secure(response)
    expect(page.get_by_role("heading", name="Customer portal and staff accounts")).to_be_visible()
    shot(page, "home")
    page.get_by_label("Business ID").fill(business.id)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=f"Welcome to {BUSINESS}")).to_be_visible()
    links = page.locator("main a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(link.split("?")[0] in ("/sign-in", "/register", "/staff/sign-in", "/staff/reset-password",
                                      "/staff/change-password") for link in links), links
    shot(page, "home-business")
    page.get_by_role("link", name="Sign in to the customer portal").click()
    expect(page).to_have_url(f"{server}/sign-in?tenant_id={business.id}")

    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(icon)
    assert icon == "/favicon.ico" and answer.status == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert page.request.get("/favicon.ico").status == 200
    assert missing == []


def test_sign_in_without_a_business_asks_for_its_id(business, page, server):
    response = page.goto("/sign-in")
    assert response.status == 200
    expect(page.get_by_role("heading", name="Sign in to a customer portal")).to_be_visible()
    assert "tenant_id=" in page.locator("#tenant_id-hint").inner_text()  # where to find it
    page.get_by_label("Business ID").fill("no-such-business")
    page.get_by_role("button", name="Continue to sign-in").click()
    expect(field_error(page, "tenant_id")).to_contain_text("We do not know this business ID")
    shot(page, "which-business")
    page.get_by_label("Business ID").fill(business.id)
    page.get_by_role("button", name="Continue to sign-in").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    assert page.url == f"{server}/sign-in?tenant_id={business.id}"


def test_a_customers_access_link_opened_and_clicked_in_webmail(http, business, page, server):
    """The secure access link (rule 6): its token leaves the URL for an HttpOnly SameSite=Strict cookie, also when
    the link is clicked on another site (one self-reload there, since Chromium withholds Strict cookies from the
    navigation another site started), and the page says whose account with which business it opens."""
    token = business.admin_token
    customer = http.post("/v1/customers", {"name": "Okafor Family"}, token=token)[1]
    status, link = http.post(f"/v1/customers/{customer['customer_id']}/access-link", token=token)
    assert status == 201 and link["link"].startswith(server + "/portal/access?token=")
    secret = link["link"].split("token=", 1)[1]
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    open_link(page, link["link"], "/portal/access")
    expect(page.get_by_role("heading", name="Secure access", exact=True)).to_be_visible()
    assert f"You have secure access to Okafor Family's account with {BUSINESS}." in page.inner_text("main")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "pa_access"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/portal/access"
    shot(page, "access-link")

    page.context.clear_cookies()
    page.route("http://webmail.test/**", lambda route: route.fulfill(
        content_type="text/html", body=f'<a id="open" href="{link["link"]}">Your account</a>'))
    page.goto("http://webmail.test/inbox")
    page.click("#open")
    expect(page.get_by_role("heading", name="Secure access", exact=True)).to_be_visible()
    assert page.url == f"{server}/portal/access"
    assert "Okafor Family's account" in page.inner_text("main")
    page.reload()
    expect(page.get_by_role("heading", name="Secure access", exact=True)).to_be_visible()
    # the token was in the URL of the link's first request only, never in a redirect or a later request
    with_token = [u for u in requested if secret in u]
    assert with_token == [link["link"], link["link"]], requested

    http.post(f"/v1/customers/{customer['customer_id']}/access-link", token=token)  # replaced
    page.goto(link["link"])
    expect(page.get_by_role("heading", name="A newer link was made")).to_be_visible()
    assert f"Ask {BUSINESS} for the new link." in page.inner_text("main")


def test_screenshots_exist():
    """The README links these: keep the set complete (this module is the only writer)."""
    expected = {"register", "register-320", "register-error", "register-done", "sign-in", "link-used",
                "reset-request", "reset-sent", "reset-password", "reset-done", "staff-accept-invite",
                "staff-accept-invite-done", "staff-reset-identifier", "staff-reset-channel", "staff-reset-code",
                "staff-reset-new", "staff-change-sign-in", "staff-change-password", "google-signed-in",
                "access-link", "staff-accept-invite-errors", "show-password", "home", "home-business",
                "which-business"}
    missing = sorted(name for name in expected if not (SCREENS / f"{name}.png").exists())
    assert not missing
