"""`pipeline bench warehouse` at a small size: the whole path (simulator shards streaming
through named pipes into the batch builder, the embedded engine, every Grafana query), its
table and its last line; and a second run on the same --dir reusing the filled warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.tools import bench_warehouse

USERS, WEEKS = 40, 2


def test_a_small_run_prints_the_slowest_queries_and_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--users", str(USERS), "--weeks", str(WEEKS), "--top", "5", "--dir", str(tmp_path)]
    assert bench_warehouse.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    figures = json.loads(out[-1])
    assert list(figures) == list(bench_warehouse.LAST_LINE_KEYS)
    assert (figures["users"], figures["weeks"], figures["queries"]) == (USERS, WEEKS, 41)
    assert figures["auth_events"] > figures["sign_ins"] > 0
    assert 0 < figures["p50_s"] <= figures["max_s"] <= figures["total_s"]
    assert figures["weekly_metrics_s"] > 0 and figures["fill_events_per_s"] > 0
    assert any(line.startswith("filling ") for line in out)
    # the table: a header, then the five slowest, slowest first, each a known query
    header = out.index("slowest of 41 queries (warm, best of 3, one at a time):")
    rows = out[header + 2 : header + 7]
    seconds = [float(row.split()[0]) for row in rows]
    assert seconds == sorted(seconds, reverse=True) and seconds[0] == figures["max_s"]
    assert all(" / " in row or " alert " in f" {row}" for row in rows)
    tables = {
        line.split()[0]: line for line in out if line.startswith(("auth_events ", "sign_in_parts "))
    }
    assert set(tables) == {"auth_events", "sign_in_parts"}

    # the same size again on the same directory: no second fill, the same data
    assert bench_warehouse.main(argv) == 0
    again = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("filling ") for line in again)
    repeated = json.loads(again[-1])
    for key in ("auth_events", "sign_ins", "queries", "fill_events_per_s"):
        assert repeated[key] == figures[key], key


def test_a_directory_holding_another_size_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "wh").mkdir()
    assert bench_warehouse.main(["--users", "10", "--weeks", "1", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pipeline bench warehouse: ") and "holds another warehouse" in err
    assert "Traceback" not in err
