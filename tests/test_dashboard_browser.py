"""The dashboard in a real browser: Playwright driving Debian's Chromium headless against
``start_dashboard`` over seeded SQLite stores. Screenshots of every tab go to
``test-artifacts/dashboard/``. A missing Chromium fails these tests (never a skip)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from avalo_otel.dashboard import start_dashboard
from avalo_otel.store import SQLiteStore

import dashboard_seed
from dashboard_seed import EXPECTED_STATUS, TRACE_ID

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
TOKEN = "browser-test-token-0123456789"
#: Card border colours by status class (dashboard.css: --ok-fill, --warn-fill, --bad-fill, --none-fill).
COLOURS = {"green": "rgb(63, 176, 97)", "yellow": "rgb(224, 168, 0)", "red": "rgb(221, 59, 82)",
           "no_data": "rgb(170, 179, 191)"}
PILL_TEXT = {"green": "Green", "yellow": "Yellow", "red": "Red", "no_data": "No data"}
TABS = [("Overview", "/", "overview"), ("Chat & Realtime", "/domains/chat", "chat"),
        ("Wallet & Payments", "/domains/wallet", "wallet"), ("Safety & Panic", "/domains/safety", "safety"),
        ("AI & Support", "/domains/ai-support", "ai-support"),
        ("Infrastructure", "/domains/infrastructure", "infrastructure"), ("Alerts", "/alerts", "alerts"),
        ("Traces", "/traces", "traces")]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium` "
                    "(never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


def _server(tmp_path_factory, name, seed):
    store = SQLiteStore(tmp_path_factory.mktemp(name) / "dash.db")
    if seed:
        dashboard_seed.seed(store, int(time.time() * 1000))
    server = start_dashboard(store, admin_token=TOKEN)
    return server, store


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    server, store = _server(tmp_path_factory, "seeded", True)
    yield server, store
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    server, store = _server(tmp_path_factory, "empty", False)
    yield server, store
    server.stop()
    store.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.console_problems = problems  # a test expecting an error status clears it
    yield page
    context.close()
    assert not problems, problems  # a CSP violation or a script error is a console error


def login(page, server, name="ann"):
    page.goto(server.url)
    assert "/login" in page.url  # no session: the login page
    page.fill("#name", name)
    page.fill("#token", server.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(server.url)


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_login_shows_the_six_slos_in_their_colours(page, seeded):
    server, _ = seeded
    page.goto(server.url + "login")
    shot(page, "login")
    page.fill("#token", "wrong-token-value")
    page.click("button[type=submit]")
    assert "not the dashboard's admin token" in page.text_content(".alert-box")
    assert page.console_problems == ["Failed to load resource: the server responded with a status of 401 "
                                     "(Unauthorized)"]  # the refused login, as expected
    page.console_problems.clear()
    login(page, server)
    assert page.locator("article.slo").count() == 6
    for slo_id, status in EXPECTED_STATUS.items():
        card = page.locator(f'article.slo[data-slo="{slo_id}"]')
        assert card.get_attribute("data-status") == status
        assert card.locator(".slo-head .pill").text_content().strip() == PILL_TEXT[status]
        colour = card.evaluate("el => getComputedStyle(el).borderLeftColor")
        assert colour == COLOURS[status], (slo_id, colour)
    support = page.locator('article.slo[data-slo="slo_support_system"]')
    assert support.locator('[data-field="exhaustion"]').text_content().strip() == "no data"
    assert page.locator(".budget svg.chart-svg").count() == 10  # 5 burn-downs + 5 burn-rate charts with data
    assert page.locator(".budget .empty-chart").count() == 2   # support: no events
    shot(page, "overview")


def test_every_tab_opens_and_draws_its_charts(page, seeded):
    server, _ = seeded
    login(page, server)
    for label, path, name in TABS:
        page.click(f"nav.tabs >> text={label}")
        page.wait_for_url(server.url.rstrip("/") + path)
        assert page.text_content("h1").strip() == (label if path != "/" else "Overview")
        assert page.locator("nav.tabs a.active").text_content().strip() == label
        if path.startswith("/domains/"):
            assert page.locator("figure.chart").count() == 3, name
            drawn = page.locator("svg.chart-svg").count()
            assert drawn == (2 if name == "ai-support" else 3), name  # no support traffic: an empty state
            assert page.locator(".kpi").count() == 4
        shot(page, name)
    page.goto(server.url + "domains/infrastructure")
    assert "eu-west" in page.text_content(".tables")  # latency by region: the points' region label


def test_acknowledging_an_alert_persists_after_reload(page, seeded):
    server, store = seeded
    login(page, server, name="ann-oncall")
    page.goto(server.url + "alerts")
    page.evaluate("window.__marker = 'before-ack'")
    row = page.locator('tr[data-alert-id="wallet_failures_critical:1"]')
    row.get_by_role("button", name="Acknowledge").click()
    page.locator("#ack-message").wait_for()
    assert "ann-oncall" in page.text_content("#ack-message")
    assert "✓ ann-oncall" in row.locator(".acked-by").text_content()
    assert page.evaluate("window.__marker") == "before-ack"  # htmx swapped the list: no page load
    page.reload()
    row = page.locator('tr[data-alert-id="wallet_failures_critical:1"]')
    assert "✓ ann-oncall" in row.locator(".acked-by").text_content()
    assert row.get_by_role("button", name="Acknowledge").count() == 0
    stored = store.get_documents("alert_events", ["wallet_failures_critical:1"])[0]
    assert stored["acknowledged"] is True and stored["acknowledgedBy"] == "ann-oncall"
    page.select_option("select[name=acknowledged]", "false")
    page.click("text=Apply filters")
    page.wait_for_url("**/alerts?*acknowledged=false*")
    assert page.locator('tr[data-alert-id="wallet_failures_critical:1"]').count() == 0
    assert page.locator('tr[data-alert-id="hostile_rule:1"]').count() == 1
    assert page.locator(".alert-name", has_text="<script>alert(1)</script>").count() == 1  # shown as text


def test_refresh_updates_the_numbers_without_a_page_load(page, seeded):
    server, store = seeded
    login(page, server)
    assert page.get_attribute("#content", "hx-trigger") == "every 60s"
    kpi = page.locator('[data-kpi="Requests"]')
    before = kpi.text_content().strip()
    page.evaluate("window.__marker = 'no-reload'")
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")
    store.write("metrics", dashboard_seed.traffic(int(time.time() * 1000) + 1000, hours=1, step_min=5, scale=9))
    page.click("#refresh")
    page.wait_for_function("old => document.querySelector('[data-kpi=\"Requests\"]').textContent.trim() !== old",
                           arg=before)  # htmx swapped in a new fragment
    after = page.locator('[data-kpi="Requests"]').text_content().strip()
    assert after != before
    assert page.evaluate("window.__marker") == "no-reload"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations


def test_a_trace_waterfall_from_a_failed_event_and_from_an_alert(page, seeded):
    server, _ = seeded
    login(page, server)
    page.goto(server.url + "traces")
    page.click(f'a.trace-link[href="/traces/{TRACE_ID}"]')
    page.wait_for_url(f"**/traces/{TRACE_ID}")
    rows = page.locator("svg.waterfall g.span-row")
    assert rows.count() == 3
    names = [rows.nth(i).locator(".span-name").text_content() for i in range(3)]
    assert names == ["api.request", "wallet.spend", "wallet.ledger_write"]  # children under their parent
    widths = [float(rows.nth(i).locator("rect.span-bar").get_attribute("width")) for i in range(3)]
    assert widths[0] > widths[1] > widths[2] > 0
    xs = [float(rows.nth(i).locator("rect.span-bar").get_attribute("x")) for i in range(3)]
    assert xs[0] < xs[1] < xs[2]
    assert page.locator("svg.waterfall rect.span-bar.bad").count() == 2
    indents = [float(rows.nth(i).locator(".span-name").get_attribute("x")) for i in range(3)]
    assert indents[0] < indents[1] < indents[2]  # depth shows as indentation
    shot(page, "trace")
    page.goto(server.url + "alerts")
    page.click("text=open trace")
    page.wait_for_url(f"**/traces/{TRACE_ID}")
    assert page.locator("svg.waterfall g.span-row").count() == 3


def test_an_empty_store_shows_empty_states(page, empty):
    server, _ = empty
    login(page, server)
    assert "No telemetry in the store yet" in page.text_content(".empty-store")
    cards = page.locator("article.slo")
    assert cards.count() == 6
    for i in range(6):
        assert cards.nth(i).get_attribute("data-status") == "no_data"
        assert cards.nth(i).evaluate("el => getComputedStyle(el).borderLeftColor") == COLOURS["no_data"]
    shot(page, "empty-overview")
    for label, path, name in TABS[1:]:
        page.goto(server.url.rstrip("/") + path)
        assert page.locator(".empty, .empty-chart, .empty-store").count() >= 1, path
    page.goto(server.url + "alerts")
    assert "No alert events" in page.text_content("#content")
    shot(page, "empty-alerts")
