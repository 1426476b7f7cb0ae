"""The dashboard's routes over a real SQLite store, through Starlette's TestClient: authentication
on every route, CSRF on acknowledge, escaping of hostile store text, security headers, empty
stores, the JSON API and its OpenAPI document, the server and the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from avalo_otel.dashboard import create_app, start_dashboard
from avalo_otel.slo import SLOEvaluator, load_slos
from avalo_otel.store import SQLiteStore

import dashboard_seed
from dashboard_seed import EXPECTED_STATUS, HOSTILE, TRACE_ID
from slo_traffic import DAY, MINUTE, points

TOKEN = "test-admin-token-0123456789"
NOW = 1_764_000_000_000 - 1_764_000_000_000 % DAY + 12 * 3600_000 + 30_000  # noon and 30 s, UTC
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = {"tab": "chat", "trace_id": TRACE_ID, "slo_id": "slo_chat_delivery", "alert_id": "wallet_failures_critical:1"}


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "dash.db") as s:
        yield s


@pytest.fixture
def seeded(store):
    dashboard_seed.seed(store, NOW, hours=12)
    return store


def client_for(store, **kwargs):
    return TestClient(create_app(store, admin_token=TOKEN, clock=lambda: NOW / 1000), **kwargs)


@pytest.fixture
def anon(seeded):
    with client_for(seeded, follow_redirects=False) as c:
        yield c


def login(client, name="ann"):
    r = client.post("/login", data={"token": TOKEN, "name": name, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


@pytest.fixture
def admin(seeded):
    with client_for(seeded, follow_redirects=False) as c:
        login(c)
        yield c


def csrf_of(client) -> str:
    page = client.get("/alerts").text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def app_routes(app):
    """Every (method, path with sample parameters) the app serves, except login and static files."""
    out = []
    for route in app.routes:
        if isinstance(route, Mount) or route.path == "/login":
            continue
        assert isinstance(route, Route)
        path = route.path.replace("{alert_id:path}", "{alert_id}")
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, path))
    return out


# -- authentication ----------------------------------------------------------------------------
def test_every_route_without_credentials_is_refused(anon):
    routes = app_routes(anon.app)
    assert len(routes) == 19  # 10 page and fragment routes (login aside), 9 API routes
    for method, path in routes:
        r = anon.request(method, path)
        if path.startswith("/api/"):
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
        elif path.startswith("/fragments/"):
            assert r.status_code == 401, (method, path)
            assert r.headers["hx-redirect"] == "/login"
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login?next=")
        assert "Wallet" not in r.text and "wallet" not in r.text  # nothing from the store leaks
    assert anon.get("/static/htmx.min.js").status_code == 200  # the vendored public assets only
    assert anon.get("/login").status_code == 200


def test_a_wrong_token_is_refused_everywhere(anon):
    for method, path in app_routes(anon.app):
        if path.startswith("/api/"):
            assert anon.request(method, path, headers=bearer("not-the-token")).status_code == 401, path
    r = anon.post("/login", data={"token": "not-the-token", "name": "eve", "next": "/"})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "not the dashboard&#39;s admin token" in r.text
    anon.cookies.set("avalo_dashboard_session", "forged-session-id")
    assert anon.get("/").status_code == 303
    assert anon.get("/api/slos").status_code == 401


def test_login_sets_an_http_only_strict_session_cookie_and_logout_ends_it(anon):
    r = login(anon)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    assert anon.get("/").status_code == 200
    csrf = csrf_of(anon)
    assert anon.post("/logout", data={}).status_code == 403  # logout is a POST with the CSRF token too
    assert anon.post("/logout", data={"csrf_token": csrf}).status_code == 303
    anon.cookies.clear()
    assert anon.get("/").status_code == 303


def test_login_redirects_only_to_local_paths(anon):
    for target, expected in (("/alerts", "/alerts"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
                             ("/\\evil", "/")):
        r = anon.post("/login", data={"token": TOKEN, "next": target})
        assert r.headers["location"] == expected


def test_failed_logins_are_throttled(anon):
    for _ in range(10):
        assert anon.post("/login", data={"token": "guess"}).status_code == 401
    assert anon.post("/login", data={"token": TOKEN}).status_code == 429


def test_the_bearer_token_reads_the_api(anon):
    r = anon.get("/api/slos", headers=bearer())
    assert r.status_code == 200
    assert {s["slo"]: s["status"] for s in r.json()["slos"]} == EXPECTED_STATUS


# -- acknowledge: POST with the CSRF token ----------------------------------------------------
def test_acknowledge_without_the_csrf_token_is_refused_and_with_it_is_persisted(admin, seeded):
    alert_id = "wallet_failures_critical:1"
    assert admin.post("/alerts/ack", data={"alert_id": alert_id}).status_code == 403
    assert admin.post("/alerts/ack", data={"alert_id": alert_id, "csrf_token": "wrong"}).status_code == 403
    assert admin.post("/api/alerts/wallet_failures_critical:1/ack", json={}).status_code == 403
    assert seeded.get_documents("alert_events", [alert_id])[0]["acknowledged"] is False
    csrf = csrf_of(admin)
    cross = admin.post("/alerts/ack", data={"alert_id": alert_id, "csrf_token": csrf},
                       headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    r = admin.post("/alerts/ack", data={"alert_id": alert_id, "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    stored = seeded.get_documents("alert_events", [alert_id])[0]
    assert stored["acknowledged"] is True and stored["acknowledgedBy"] == "ann"
    assert stored["acknowledgedAt"] == NOW
    page = admin.get("/alerts").text
    assert "✓ ann" in page


def test_acknowledge_through_htmx_returns_the_refreshed_list(admin, seeded):
    r = admin.post("/alerts/ack", data={"alert_id": "hostile_rule:1", "status": "firing"},
                   headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(admin)})
    assert r.status_code == 200
    assert "Acknowledged" in r.text and "as ann" in r.text and "<html" not in r.text
    assert seeded.get_documents("alert_events", ["hostile_rule:1"])[0]["acknowledgedBy"] == "ann"
    missing = admin.post("/alerts/ack", data={"alert_id": "nope:1"},
                         headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(admin)})
    assert missing.status_code == 404 and "No such alert" in missing.text


def test_the_api_acknowledges_with_a_bearer_token(anon, seeded):
    r = anon.post("/api/alerts/wallet_failures_critical:1/ack", json={"by": "ops-<b>1</b>"}, headers=bearer())
    assert r.status_code == 200
    stored = seeded.get_documents("alert_events", ["wallet_failures_critical:1"])[0]
    assert stored["acknowledgedBy"] == "ops-b1b"  # names are cleaned to printable, short text
    assert anon.post("/api/alerts/missing:9/ack", json={}, headers=bearer()).status_code == 404


# -- escaping ---------------------------------------------------------------------------------
def test_hostile_store_text_renders_as_text(admin, seeded):
    hostile_op = 'api.x"><img src=x onerror=alert(2)>'
    seeded.write("metrics", points(NOW - 5 * MINUTE, hostile_op, ok=3, server_errors=1, latencies_ms=[10, 20, 30, 40]))
    span = dashboard_seed.spans(NOW)[0]
    span.update(id=f"{TRACE_ID}-ffffffffffffffff", spanId="ffffffffffffffff", name=HOSTILE, parentSpanId=None)
    seeded.write("traces", [span])
    pages = [admin.get(p).text for p in ("/alerts", "/domains/infrastructure", f"/traces/{TRACE_ID}",
                                          "/fragments/alerts?")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2]
    for text in pages:
        assert HOSTILE not in text
        assert "<img src=x" not in text
    api = admin.get("/api/alerts").json()
    assert any(a["name"] == HOSTILE for a in api["alerts"])  # JSON carries the text as data


def test_pages_have_no_inline_script_style_or_handlers(admin):
    for path in ("/", "/domains/chat", "/domains/infrastructure", "/alerts", f"/traces/{TRACE_ID}", "/login"):
        html = admin.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert 'src="/static/' in tag, (path, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), path  # no inline code
        assert not re.search(r"\sstyle\s*=", html), path
        assert not re.search(r"<style\b", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path


# -- headers ----------------------------------------------------------------------------------
def check_security_headers(r):
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_security_headers_on_pages_api_static_and_errors(admin, anon):
    for r in (admin.get("/"), admin.get("/fragments/overview?view=rolling&hours=6"), admin.get("/api/slos"),
              admin.get("/static/htmx.min.js"), admin.get("/static/dashboard.css"), anon.get("/login"),
              anon.get("/api/health"), anon.get("/"), admin.get("/no-such-page"), admin.get("/api/nope")):
        check_security_headers(r)
    assert admin.get("/").headers["cache-control"] == "no-store"
    assert admin.get("/api/slos").headers["cache-control"] == "no-store"


# -- pages and API with data ------------------------------------------------------------------
def test_every_page_renders_the_seeded_data(admin):
    overview = admin.get("/").text
    for slo_id, status in EXPECTED_STATUS.items():
        assert f'data-slo="{slo_id}" data-status="{status}"' in overview
    assert "No data" in overview and "Yellow" in overview and "Red" in overview and "Green" in overview
    tabs = {"chat": "chat.send", "wallet": "wallet.spend", "safety": "safety.panic_press",
            "ai-support": "ai.request", "infrastructure": "eu-west"}
    for tab, expected in tabs.items():
        page = admin.get(f"/domains/{tab}")
        assert page.status_code == 200 and expected in page.text, tab
        assert "<svg" in page.text
    assert admin.get("/domains/nope").status_code == 404
    alerts = admin.get("/alerts").text
    assert "Wallet Failures Critical" in alerts and "disabled" in alerts and "oncall-7" in alerts
    assert f'href="/traces/{TRACE_ID}"' in alerts  # an alert that carries a trace links to it
    trace = admin.get(f"/traces/{TRACE_ID}").text
    assert trace.count('class="span-row"') == 3 and "wallet.ledger_write" in trace
    assert f'href="/traces/{TRACE_ID}"' in admin.get("/traces").text  # from the failed event
    assert "No spans stored" in admin.get("/traces?trace_id=0123456789abcdef0123456789abcdef").text
    assert "32 hexadecimal" in admin.get("/traces?trace_id=<b>").text


def test_alert_filters(admin):
    def ids(query):
        return [a["id"] for a in admin.get(f"/api/alerts?{query}").json()["alerts"]]

    assert set(ids("")) == {"wallet_failures_critical:1", "chat_error_rate_high:1", "hostile_rule:1"}
    assert ids("severity=CRITICAL") == ["wallet_failures_critical:1"]
    assert ids("status=resolved") == ["chat_error_rate_high:1"]
    assert set(ids("acknowledged=false")) == {"wallet_failures_critical:1", "hostile_rule:1"}
    assert ids("acknowledged=true&status=resolved") == ["chat_error_rate_high:1"]
    page = admin.get("/alerts?severity=WARN").text
    assert 'data-alert-id="chat_error_rate_high:1"' in page and 'data-alert-id="wallet_failures_critical:1"' not in page
    assert admin.get("/api/alerts?limit=0").status_code == 400


def test_the_slo_api_agrees_with_the_report_and_the_budget_history(admin, seeded):
    slos = {s["slo"]: s for s in admin.get("/api/slos").json()["slos"]}
    reports = SLOEvaluator(seeded, load_slos()).evaluate(NOW, update=False)
    for report in reports:
        expected = report.to_dict()
        got = slos[report.slo.id]
        for key in ("status", "budget_status", "sli", "budget_remaining", "burn_rates", "time_to_exhaustion_s"):
            assert got[key] == expected[key], (report.slo.id, key)
        history = admin.get(f"/api/slos/{report.slo.id}/budget-history?step_minutes=120").json()
        for ind, ind_report in zip(history["indicators"], expected["indicators"]):
            last = ind["points"][-1][1]
            remaining = ind_report["error_budget"]["remaining"]
            if remaining is None:
                assert last is None
            elif isinstance(remaining, str):  # zero tolerance exhausted
                assert last == 0.0
            else:
                assert last == pytest.approx(remaining, abs=1e-6)
    calendar = admin.get("/api/slos?view=calendar_month").json()
    assert calendar["view"] == "calendar_month" and len(calendar["slos"]) == 6
    assert admin.get("/api/slos?view=weekly").status_code == 400
    assert admin.get("/api/slos/slo_nope/budget-history").status_code == 404


def test_health_domains_rules_and_traces_api(admin):
    health = admin.get("/api/health?hours=6").json()
    assert health["requests"] > 0 and 0 < health["error_rate"] < 0.05
    assert health["latency_ms"]["P95"] > health["latency_ms"]["P50"] > 0
    assert len(health["series"]) == 72
    assert admin.get("/api/health?hours=100").status_code == 400
    chat = admin.get("/api/domains/chat").json()
    assert chat["title"] == "Chat & Realtime"
    assert {r["operation"] for r in chat["tables"][0]["rows"]} == {"chat.send", "chat.deliver"}
    wallet = admin.get("/api/domains/wallet").json()
    assert wallet["failures"][0]["traceId"] == TRACE_ID
    assert admin.get("/api/domains/nope").status_code == 404
    rules = admin.get("/api/rules").json()["rules"]
    assert {r["id"]: r["enabled"] for r in rules}["api_error_rate_critical"] is False
    trace = admin.get(f"/api/traces/{TRACE_ID}").json()
    assert [s["name"] for s in trace["spans"]] == ["api.request", "wallet.spend", "wallet.ledger_write"]
    assert admin.get("/api/traces/zz").status_code == 400
    assert admin.get("/api/traces/0123456789abcdef0123456789abcdef").status_code == 404


def test_the_openapi_document_lists_every_api_route(admin):
    r = admin.get("/api/openapi.json")
    doc = json.loads(r.text)
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for route in admin.app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            for method in route.methods - {"HEAD"}:
                served.add((method, route.path.replace(":path}", "}")))
    assert served == documented
    for ops in doc["paths"].values():
        for op in ops.values():
            assert "401" in op["responses"] and op["summary"]


def test_the_dashboard_reads_firestore_alike(firestore_emulator):
    """The production backend through Google's emulator and the real client: the same pages and numbers."""
    from avalo_otel_exporter_firestore import FirestoreStore

    with FirestoreStore(firestore_emulator.client(firestore_emulator.project_id())) as fs:
        dashboard_seed.seed(fs, NOW, hours=6)
        with client_for(fs, follow_redirects=False) as c:
            login(c)
            overview = c.get("/").text
            for slo_id, status in EXPECTED_STATUS.items():
                assert f'data-slo="{slo_id}" data-status="{status}"' in overview
            assert c.get("/api/health").json()["requests"] > 0
            assert c.get("/api/domains/wallet").json()["failures"][0]["traceId"] == TRACE_ID
            assert [a["id"] for a in c.get("/api/alerts?severity=CRITICAL&acknowledged=false").json()["alerts"]] == \
                ["wallet_failures_critical:1"]
            assert len(c.get(f"/api/traces/{TRACE_ID}").json()["spans"]) == 3
            csrf = csrf_of(c)
            assert c.post("/alerts/ack", data={"alert_id": "hostile_rule:1", "csrf_token": csrf}).status_code == 303
            assert fs.get_documents("alert_events", ["hostile_rule:1"])[0]["acknowledgedBy"] == "ann"


# -- the empty store --------------------------------------------------------------------------
def test_an_empty_store_shows_empty_states_and_never_errors(store):
    with client_for(store, follow_redirects=False) as c:
        login(c)
        overview = c.get("/")
        assert overview.status_code == 200
        assert "No telemetry in the store yet" in overview.text
        assert overview.text.count('data-status="no_data"') == 6
        assert "No events in the window" in overview.text
        for tab in ("chat", "wallet", "safety", "ai-support", "infrastructure"):
            page = c.get(f"/domains/{tab}")
            assert page.status_code == 200
            assert "No failed events in this range" in page.text
            assert "No events in this range" in page.text or "No latency recorded" in page.text
        alerts = c.get("/alerts").text
        assert "No alert events" in alerts and "No rules stored yet" in alerts
        assert c.get("/traces").status_code == 200
        for path in ("/api/slos", "/api/health", "/api/domains/safety", "/api/alerts", "/api/rules",
                     "/api/slos/slo_api_overall/budget-history", "/fragments/overview?view=rolling&hours=1"):
            assert c.get(path).status_code == 200, path
        assert {s["status"] for s in c.get("/api/slos").json()["slos"]} == {"no_data"}


# -- packaging, imports, server, CLI ----------------------------------------------------------
def test_instrumented_apps_never_import_the_web_stack():
    code = ("import sys, avalo_otel, avalo_otel.slo, avalo_otel.slo.history, avalo_otel.alerts, "
            "avalo_otel.dashboard, avalo_otel.dashboard.cli\n"
            "bad = [m for m in ('starlette', 'jinja2', 'uvicorn', 'python_multipart') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_vendored_assets_ship_with_the_package():
    import tomllib
    from importlib import resources

    files = resources.files("avalo_otel.dashboard")
    htmx = files.joinpath("static/htmx.min.js").read_text()
    assert htmx.startswith("var htmx=") and "cdn" not in htmx[:200].lower()
    assert 'version:"2.' in htmx  # htmx 2, from the npm registry's htmx.org package
    assert files.joinpath("static/htmx.LICENSE").read_text().startswith("Zero-Clause BSD")
    assert files.joinpath("templates/base.html").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["avalo_otel.dashboard"] == ["templates/*.html", "static/*"]
    extras = pyproject["project"]["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["dashboard"]} == {"starlette", "jinja2", "uvicorn", "python-multipart"}
    for html in files.joinpath("templates").iterdir():
        assert "http://" not in html.read_text() and "https://" not in html.read_text(), html.name


def test_start_dashboard_serves_on_a_free_loopback_port_and_stops_cleanly(seeded):
    server = start_dashboard(seeded)
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
        assert len(server.admin_token) >= 32 and server.admin_token not in repr(server)
        request = urllib.request.Request(server.url + "api/alerts", headers=bearer(server.admin_token))
        with urllib.request.urlopen(request, timeout=10) as r:
            assert len(json.load(r)["alerts"]) == 3
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "api/health", timeout=10)
        assert refused.value.code == 401
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "login", timeout=2)


def test_the_settings_mask_the_dashboard_token():
    from avalo_otel.settings import Settings

    settings = Settings.load(environ={"AVALO_OTEL_DASHBOARD_TOKEN": "s3cret-token-value"})
    assert settings.dashboard_token == "s3cret-token-value"
    assert settings.describe()["dashboard_token"] == "***"
    assert "s3cret" not in repr(settings)


CLI = """
import argparse, sys
from avalo_otel.dashboard.cli import add_parser
parser = argparse.ArgumentParser(prog="avalo-otel")
sub = parser.add_subparsers(dest="command", required=True)
def store_args(p):
    p.add_argument("--backend", choices=("sqlite", "firestore"), default="sqlite")
    p.add_argument("--path")
    p.add_argument("--prefix", default="")
    p.add_argument("--project")
add_parser(sub, store_args)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""


def test_the_cli_generates_a_token_prints_it_once_and_stops_on_sigterm(seeded, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AVALO_OTEL_DASHBOARD_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-c", CLI, "dashboard", "--path", str(seeded.path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("Press Ctrl-C") for line in lines) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        url = next(line.split(": ", 1)[1] for line in lines if line.startswith("Avalo reliability dashboard:"))
        token = next(line.rsplit(": ", 1)[1] for line in lines if line.startswith("Admin token"))
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(url + "api/rules", headers=bearer(token))
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "\n".join(lines + [out]).count(token) == 1
    assert token not in err


def test_the_cli_refuses_a_missing_store_and_a_bad_port(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "avalo_otel.cli", "query", "events", "--path",
                              str(tmp_path / "nope.db")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2  # open_store never creates a store: the dashboard shares it
    bad = subprocess.run([sys.executable, "-c", CLI, "dashboard", "--port", "70000"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "not a port number" in bad.stderr
    absent = subprocess.run([sys.executable, "-c", CLI, "dashboard", "--path", str(tmp_path / "nope.db")],
                            capture_output=True, text=True, cwd=ROOT)
    assert absent.returncode != 0 and "no telemetry store" in absent.stderr
