"""`welfare bench --quick`: every benchmark runs with tiny counts and reports sane numbers.

Asserts the shape of the JSON and of the Markdown section, never a speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from welfare.bench.results import MARK_BEGIN, MARK_END, Report, Row, merge_json, write_markdown
from welfare.cli import main

_ROW_KEYS = {
    "group",
    "figure",
    "value",
    "unit",
    "comparison",
    "comparison_value",
    "ratio",
    "target",
    "met",
    "note",
}


def test_markdown_section_is_replaced_not_appended(tmp_path: Path) -> None:
    """Regenerating keeps the hand-written text and holds exactly one generated section."""
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nHand-written method.\n")
    for value in (1.0, 2.0):
        report = Report(rows=[Row("g", "f", value, "ms", target="≤ 3 ms", met=True)])
        write_markdown(doc, report.table())
    text = doc.read_text()
    assert text.count(MARK_BEGIN) == text.count(MARK_END) == 1
    assert "Hand-written method." in text
    assert "| f | 2.00 ms |" in text
    assert "| f | 1.00 ms |" not in text


def test_a_run_of_some_benchmarks_keeps_the_other_groups(tmp_path: Path) -> None:
    """`--only figures` replaces the figures group and keeps the others, each with its run."""
    doc = tmp_path / "performance.md"
    first = Report(
        started_at="run-1", rows=[Row("1. a", "x", 1.0, "ms"), Row("3. b", "y", 1.0, "ms")]
    )
    write_markdown(doc, first.table())
    second = Report(started_at="run-2", rows=[Row("3. b", "y", 2.0, "ms")])
    write_markdown(doc, second.table())
    text = doc.read_text()
    a, b = text.index("#### 1. a"), text.index("#### 3. b")
    assert a < b
    assert "Run of run-1" in text[a:b]
    assert "| x | 1.00 ms |" in text[a:b]
    assert "Run of run-2" in text[b:]
    assert "| y | 2.00 ms |" in text[b:]
    assert "| y | 1.00 ms |" not in text
    # The JSON keeps the other benchmarks' rows and details the same way.
    out = tmp_path / "performance.json"
    first.details = {"a": {"n": 1}, "step_wall_s": {"a": 1.0, "b": 1.0}}
    out.write_text(merge_json(out, first))
    second.details = {"b": {"n": 2}, "step_wall_s": {"b": 2.0}}
    data = json.loads(merge_json(out, second))
    assert [(r["group"], r["value"]) for r in data["rows"]] == [("1. a", 1.0), ("3. b", 2.0)]
    assert data["details"] == {"a": {"n": 1}, "b": {"n": 2}, "step_wall_s": {"a": 1.0, "b": 2.0}}


def test_quick_run_writes_sane_json_and_table(tmp_path: Path) -> None:
    """All four benchmarks run end to end against real Mosquitto and PostgreSQL."""
    out, doc = tmp_path / "performance.json", tmp_path / "performance.md"
    doc.write_text("# Performance\n")
    assert main(["bench", "--quick", "--out", str(out), "--doc", str(doc)]) == 0

    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["postgresql"]
    rows = data["rows"]
    assert rows
    for row in rows:
        assert set(row) == _ROW_KEYS
        assert "failed" not in row["note"], row
        for key in ("value", "comparison_value", "ratio"):
            if row[key] is not None:
                assert math.isfinite(row[key]), row
                assert row[key] >= 0, row
        assert row["met"] in (True, False, None)
    groups = {row["group"].split(".")[0] for row in rows}
    assert {"1", "2", "3", "4", "5", "6", "7"} <= groups  # one group per benchmark

    def value(prefix: str) -> float:
        found = [r["value"] for r in rows if r["figure"].startswith(prefix)]
        assert found, prefix
        assert found[0] is not None, prefix
        return float(found[0])

    # Every event of every phase reached the database exactly as sent.
    ingest = data["details"]["ingest"]
    for phase in [ingest["naive_throughput"], *ingest["smart_throughput"].values()]:
        assert phase["stored_events"] == phase["sent_events"] > 0
    assert ingest["smart_latency"]["ack_ms"]["unacked"] == 0
    assert value("sustained events/s, 1 consumer") > 0
    assert 0 < value("publish → commit p50") <= value("publish → commit p99")
    edge = data["details"]["edge"]
    assert edge["drain"]["pending_at_start"] > 0
    assert edge["drain"]["drain_s"] is not None
    assert edge["drain"]["stored_in_db"] >= edge["drain"]["pending_at_start"]
    assert 0 < value("tap → durable confirmation p50") <= value("tap → durable confirmation p99")
    assert value("peak RSS of one ingest consumer") > 1
    # Every registry change reached every kiosk (a change that never arrives counts the
    # timeout, so it shows here and in `met`).
    fleet = data["details"]["fleet"]
    changes = fleet["scale"]["kiosks"] * fleet["scale"]["changes"]
    assert len(fleet["change_to_kiosk_s"]) == changes
    assert max(fleet["change_to_kiosk_s"]) < fleet["scale"]["timeout_s"]
    assert value("registry change → applied on every kiosk, p99") > 0
    assert value("apply a 500-member roster on the device") > 0
    assert value("peak RSS of the edge agent") > 1
    assert value("frame → confirmation question at the kiosk UI") > 0

    # The staff pages answered every request of every simulated staff member as expected.
    desk = data["details"]["desk"]
    assert desk["requests"] > 0
    assert desk["errors"] == []
    assert value("page response p95") > 0

    text = doc.read_text()
    assert MARK_BEGIN in text
    assert MARK_END in text
    assert "| figure | value | comparison | ratio | target | met | note |" in text
    # Staff pages (issue 13): signed-in sessions worked through the pages without an error.
    staff = data["details"]["staff_pages"]
    assert staff["errors"] == []
    assert sum(staff["requests_by_page"].values()) > 0
    assert value("5 signed-in staff, main paths: answer time p95") > 0
