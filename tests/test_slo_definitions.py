"""SLO definitions: the six built-in SLOs as the original design states them, user files in the
same format, and every invalid definition rejected with a message that says where and why."""

from __future__ import annotations

import pytest

from avalo_otel.slo import SLODefinitionError, configured_slos, load_slos, parse_slos
from avalo_otel.settings import Settings

BASE = """
slos:
  - id: slo_custom
    select: {operations: [chat.send]}
    indicators:
      - {id: fast, kind: latency, threshold_ms: 250, objective: 90}
"""


def test_the_six_builtin_slos_follow_the_original_design():
    slos = {s.id: s for s in load_slos()}
    assert list(slos) == ["slo_chat_delivery", "slo_wallet_operations", "slo_panic_safety", "slo_ai_companions",
                          "slo_support_system", "slo_api_overall"]
    chat = slos["slo_chat_delivery"]
    assert (chat.indicator("latency").threshold_ms, chat.indicator("latency").objective) == (300, 95)
    assert chat.indicator("latency").warn_threshold_ms == 500
    assert (chat.indicator("availability").objective, chat.indicator("availability").warn_objective) == (99.5, 99.0)
    assert slos["slo_wallet_operations"].select.operations == ("wallet.spend", "wallet.refund", "wallet.payout_request")
    assert slos["slo_wallet_operations"].indicators[0].budget == pytest.approx(0.002)
    panic = slos["slo_panic_safety"]
    assert panic.indicator("availability").zero_tolerance and panic.indicator("availability").budget == 0
    assert (panic.indicator("latency_5s").threshold_ms, panic.indicator("latency_5s").budget) == (5000, pytest.approx(0.001))
    assert slos["slo_ai_companions"].indicator("latency").threshold_ms == 2500
    assert slos["slo_ai_companions"].indicator("availability").budget == pytest.approx(0.01)
    assert slos["slo_support_system"].indicators[0].objective == 99.9
    assert slos["slo_api_overall"].select.domains == ("api",)
    assert all(s.window_days == 30 for s in slos.values())


def test_a_user_file_adds_slos_and_replaces_a_builtin_one_by_id(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(BASE + """
  - id: slo_api_overall
    select: {domains: [api]}
    indicators:
      - {id: availability, kind: availability, objective: 99.95}
""")
    slos = {s.id: s for s in configured_slos(Settings.load({}), [str(path)])}
    assert len(slos) == 7
    assert slos["slo_custom"].indicator("fast").threshold_ms == 250
    assert slos["slo_api_overall"].indicators[0].objective == 99.95
    assert slos["slo_api_overall"].source == str(path)


def test_a_latency_threshold_must_be_a_bucket_boundary_unless_the_buckets_get_it():
    text = BASE.replace("250", "350")
    with pytest.raises(SLODefinitionError) as err:
        parse_slos(text, source="mine.yaml")
    message = str(err.value)
    assert message.startswith("mine.yaml: slos[0] (slo_custom).indicators[0].threshold_ms: 350 ms is not a bucket boundary")
    assert "AVALO_OTEL_LATENCY_BUCKETS_MS" in message
    # The setting adds the boundary to the histogram's buckets, and with it the SLO is valid.
    settings = Settings.load({"AVALO_OTEL_LATENCY_BUCKETS_MS": "350, 450"})
    assert settings.latency_buckets_ms == (350.0, 450.0)
    from avalo_otel.settings import latency_buckets

    assert parse_slos(text, buckets=latency_buckets(settings))[0].indicators[0].threshold_ms == 350


@pytest.mark.parametrize("change, expected", [
    (("objective: 90", "objective: 0"), "objective is a percentage in (0, 100]"),
    (("objective: 90", "objective: 100.5"), "objective is a percentage in (0, 100]"),
    (("objective: 90", "objective: '90'"), "must be a finite number"),
    (("objective: 90", "objective: true"), "must be a finite number"),
    (("objective: 90", "objective: .nan"), "must be a finite number"),
    (("kind: latency", "kind: speed"), "unknown kind 'speed'"),
    (("id: fast", "id: Fast-1"), "is not a valid id"),
    (("id: slo_custom", "id: ''"), "is not a valid id"),
    (("{operations: [chat.send]}", "{}"), "needs at least one of 'operations' or 'domains'"),
    (("{operations: [chat.send]}", "{operations: [Send Message]}"), "not a valid operation name"),
    (("{operations: [chat.send]}", "{services: [chat]}"), "unknown key(s) ['services']"),
    (("threshold_ms: 250, ", ""), "a latency indicator needs threshold_ms"),
    (("kind: latency", "kind: availability"), "only latency indicators have a threshold"),
    (("objective: 90}", "objective: 90, warn: {threshold_ms: 200}}"), "the warning threshold must be above 250 ms"),
    (("objective: 90}", "objective: 90, warn: {objective: 95}}"), "the warning level must be below the objective"),
    (("objective: 90}", "objective: 90, warn: {objective: 80, threshold_ms: 500}}"), "exactly one of"),
    (("objective: 90}", "objective: 90, window: 30}"), "unknown key(s) ['window']"),
    (("    indicators:", "    window_days: 0\n    indicators:"), "window_days: must be a whole number from 1 to 90"),
    (("    indicators:", "    min_events: -1\n    indicators:"), "min_events: must be a whole number"),
])
def test_invalid_definitions_are_rejected_with_a_clear_error(change, expected):
    old, new = change
    assert old in BASE
    with pytest.raises(SLODefinitionError) as err:
        parse_slos(BASE.replace(old, new, 1), source="mine.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("mine.yaml: ")


@pytest.mark.parametrize("text, expected", [
    ("slos: [", "not valid YAML"),
    ("- a\n- b", "must be a mapping with a 'slos' list"),
    ("slos: []", "must be a non-empty list"),
    ("version: 2\nslos: []", "unsupported version 2"),
    ("slos: []\nalerts: []", "unknown key(s) ['alerts']"),
    (BASE + BASE.split("slos:\n", 1)[1], "duplicate SLO id 'slo_custom'"),
    (BASE + "      - {id: fast, kind: availability, objective: 99}\n", "duplicate indicator id 'fast'"),
])
def test_invalid_files_are_rejected(text, expected):
    with pytest.raises(SLODefinitionError, match=None) as err:
        parse_slos(text, source="f.yaml")
    assert expected in str(err.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SLODefinitionError, match=r"cannot read the SLO file .*nope.yaml"):
        load_slos([tmp_path / "nope.yaml"])


def test_selectors_match_labels_and_render_the_same_selection_in_promql():
    chat, api = parse_slos(BASE)[0].select, {s.id: s for s in load_slos()}["slo_api_overall"].select
    assert chat.matches({"operation": "chat.send", "domain": "chat"})
    assert not chat.matches({"operation": "chat.read", "domain": "chat"})
    assert api.matches({"operation": "api.request", "domain": "api"}) and not api.matches({"domain": "apix"})
    assert chat.promql() == 'operation=~"chat\\\\.send"'
    assert api.promql() == 'domain=~"api"'
