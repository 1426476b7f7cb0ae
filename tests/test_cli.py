"""``avalo-otel cleanup`` and ``avalo-otel query`` on both stores: a SQLite file, and Firestore
through Google's emulator (the CLI builds its own client from the environment, as in production).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from google.cloud.firestore_v1.services.firestore.client import FirestoreClient as FirestoreApi

from avalo_otel.cli import main
from avalo_otel.store import DAY_MS, METRICS, SLO_ROLLUPS, TELEMETRY_EVENTS, TRACES, SQLiteStore, Store
from avalo_otel_exporter_firestore import FirestoreStore
from store_contract import alert, event, ids, metric, rollup, rule, span

NOW = int(time.time() * 1000)
OLD = NOW - 400 * DAY_MS  # past every retention (90 days at most)


@pytest.fixture(params=["sqlite", "firestore"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[str], Store]]:
    """(the CLI's store flags, the same store opened by the test), filled with expired and live
    documents in every collection."""
    if request.param == "sqlite":
        path = tmp_path / "telemetry.db"
        store: Any = SQLiteStore(path)
        flags = ["--path", str(path)]
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        project = emulator.project_id()
        store = FirestoreStore(emulator.client(project))
        flags = ["--backend", "firestore", "--project", project]
    store.write(TELEMETRY_EVENTS, [event(f"old{i}", OLD) for i in range(5)] + [event("new", NOW)])
    store.write(METRICS, [metric("m-old", OLD), metric("m-new", NOW)])
    store.write(TRACES, [span("t1", "old", OLD), span("t2", "new", NOW)])
    store.insert_alert_event(alert("a-old", OLD))
    store.insert_alert_event(alert("a-new", NOW))
    store.write(SLO_ROLLUPS, [rollup("slo", OLD, data="{}"), rollup("slo", NOW, data="{}")])
    store.put_alert_rule(rule("r1", updatedAt=OLD))  # rules are kept, however old
    yield flags, store
    store.close()


def remaining(store: Store) -> dict[str, list[str]]:
    return {
        "events": sorted(ids(store.query_events(limit=100))),
        "metrics": ids(store.query_metrics(limit=100)),
        "traces": ids(store.query_traces(limit=100)),
        "alerts": ids(store.query_alert_events(limit=100)),
        "rules": ids(store.list_alert_rules()),
        "rollups": ids(store.get_documents(SLO_ROLLUPS, [f"slo:{OLD}", f"slo:{NOW}"])),
    }


FULL = {"events": ["new", "old0", "old1", "old2", "old3", "old4"], "metrics": ["m-new", "m-old"],
        "traces": ["t2-new", "t1-old"], "alerts": ["a-new", "a-old"], "rules": ["r1"],
        "rollups": [f"slo:{OLD}", f"slo:{NOW}"]}


def test_cleanup_dry_run_reports_counts_and_deletes_nothing(
    backend: tuple[list[str], Store], capsys: pytest.CaptureFixture[str]
) -> None:
    flags, store = backend
    assert main(["cleanup", *flags, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "telemetry_events: would delete 5 expired document(s)",
        "metrics: would delete 1 expired document(s)",
        "traces: would delete 1 expired document(s)",
        "alert_events: would delete 1 expired document(s)",
        "slo_rollups: would delete 1 expired document(s)",
    ]
    assert remaining(store) == FULL


def test_cleanup_deletes_what_is_past_retention_in_batches(
    backend: tuple[list[str], Store], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flags, store = backend
    asked: list[int] = []
    kind = type(store)
    delete = kind.delete_expired

    def spy(self: Any, collection: str, now_ms: int, **kwargs: Any) -> int:
        asked.append(kwargs["batch_size"])
        return delete(self, collection, now_ms, **kwargs)

    commits: list[int] = []
    commit = FirestoreApi.commit

    def commit_spy(self: FirestoreApi, *args: Any, request: Any = None, **kwargs: Any) -> Any:
        commits.append(len(request["writes"] if isinstance(request, dict) else request.writes))
        return commit(self, *args, request=request, **kwargs)

    monkeypatch.setattr(kind, "delete_expired", spy)
    monkeypatch.setattr(FirestoreApi, "commit", commit_spy)
    assert main(["cleanup", *flags, "--batch-size", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "telemetry_events: deleted 5 expired document(s)",
        "metrics: deleted 1 expired document(s)",
        "traces: deleted 1 expired document(s)",
        "alert_events: deleted 1 expired document(s)",
        "slo_rollups: deleted 1 expired document(s)",
    ]
    assert asked == [2, 2, 2, 2, 2]
    if isinstance(store, FirestoreStore):
        assert commits == [2, 2, 1, 1, 1, 1, 1]  # events in three commits, then one per collection
    assert remaining(store) == {"events": ["new"], "metrics": ["m-new"], "traces": ["t2-new"],
                                "alerts": ["a-new"], "rules": ["r1"], "rollups": [f"slo:{NOW}"]}
    assert main(["cleanup", *flags, "--dry-run"]) == 0  # nothing left to do
    assert "would delete 0" in capsys.readouterr().out


def test_query_prints_stored_documents_as_json_lines(
    backend: tuple[list[str], Store], capsys: pytest.CaptureFixture[str]
) -> None:
    flags, _ = backend
    assert main(["query", "events", *flags, "--limit", "2"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(docs) == 2 and docs[0]["id"] == "new" and docs[1]["id"].startswith("old")  # newest first
    assert docs[0]["domain"] == "chat" and docs[0]["expireAt"] == NOW + 90 * DAY_MS
    assert main(["query", "traces", *flags, "--trace-id", "t1"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == ["t1-old"]
    assert main(["query", "metrics", *flags, "--name", "nope"]) == 0
    assert capsys.readouterr().out == ""


def test_a_missing_sqlite_file_is_an_error_not_a_new_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AVALO_OTEL_STORE_PATH", raising=False)
    for argv in (["cleanup", "--dry-run"], ["query", "events"], ["cleanup", "--path", "typo.db"]):
        assert main(argv) == 2
        assert "no telemetry store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["cleanup", "--batch-size", "0"], ["query", "events", "--limit", "-1"],
                                  ["query", "events", "--limit", "many"]])
def test_counts_must_be_positive_whole_numbers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "is not a positive whole number" in capsys.readouterr().err
