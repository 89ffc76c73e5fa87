"""What every real-browser test shares: the app served over HTTP in this test process (chalice's local server in a
thread, talking to this process's moto server), Debian's Chromium driven by Playwright (never a downloaded build),
a tab that fails its test on any CSP violation, screenshots under docs/screens/, and axe-core (from the npm
registry, tests/axe/; `make test` installs it) injected into a page to check it.

Screenshots: each test module writes only its own names (parallel workers never race on a file)."""
import os
import threading

import pytest
from conftest import ROOT

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENS = ROOT / "docs" / "screens"
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SECURITY = {"x-frame-options": "DENY", "referrer-policy": "no-referrer", "cache-control": "no-store"}


@pytest.fixture(scope="module")
def server(app, request):
    """The app over HTTP on a free port; links in messages point at it while this module runs. A module that sets
    SERVER_HOST = "localhost" gets that name in its base URL (passkeys need a domain name as the relying party,
    never an IP address)."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import create_local_server
    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name="local")
    app_class = type(app.app)  # chalice swaps the app's class for its local one: put it back for the next module
    local = create_local_server(app.app, config, "127.0.0.1", 0)
    base = f"http://{getattr(request.module, 'SERVER_HOST', '127.0.0.1')}:{local.server.server_address[1]}"
    previous = os.environ.get("PORTAL_PUBLIC_BASE_URL")
    os.environ["PORTAL_PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield base
    local.server.shutdown()
    local.server.server_close()
    thread.join(timeout=10)
    app.app.__class__ = app_class
    if previous is None:
        os.environ.pop("PORTAL_PUBLIC_BASE_URL", None)
    else:
        os.environ["PORTAL_PUBLIC_BASE_URL"] = previous


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # generous: CI shares 2 cores with the other test worker
    tab.csp_violations = []
    tab.console_messages = []
    tab.on("console", lambda msg: tab.console_messages.append(msg.text))
    tab.on("console", lambda msg: tab.csp_violations.append(msg.text)
           if "Content Security Policy" in msg.text else None)
    yield tab
    context.close()
    assert tab.csp_violations == []  # the stylesheet loads, nothing inline is attempted


def fill_console_sign_in(page, tenant_id, username, password, start="/console/sign-in"):
    """Opens `start` (the console's sign-in, or a page that leads there) and signs in as a person would: the three
    labelled fields and the Sign in button. What the page shows next is each test's to check."""
    page.goto(start)
    page.get_by_label("Business ID").fill(tenant_id)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page, name):
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def assert_secure(response):
    headers = response.headers
    for name, value in SECURITY.items():
        assert headers[name] == value, name
    csp = headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.x A/AA rules over the page as it is now; the violations of `impacts`, in words.

    axe is evaluated through the DevTools protocol, as a test tool, not added to the page as a <script>: the page's
    CSP (script-src 'self') stays on and would report an injected script as a violation."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (npm ci --prefix tests/axe)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
                                                                          'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in result if v["impact"] in impacts]
