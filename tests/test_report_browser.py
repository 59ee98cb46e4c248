"""The report's page in headless Chromium (Debian's `chromium`, installed by `make setup`),
with every request but the page itself refused and no host resolvable: it loads without a
console error and without asking for anything, every chart draws marks, a screenshot is
taken, and the PDF printed from it has pages with text (`pdftotext`, poppler-utils)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_report import HOSTILE_USER
from warehouse_fill import fill, migrated

from pipeline.report.data import read_report
from pipeline.report.render import Chromium, PageLoad, find_chromium, write_report

# Vega's SVG renderer draws each mark of a chart as a group of role "mark" (axes, legends
# and titles have roles of their own): the marks a chart drew.
MARKS_PER_CHART = """
Array.from(document.querySelectorAll('[data-chart]')).map(function (chart) {
  return [chart.dataset.chart,
          chart.querySelectorAll('svg g.role-mark > path, svg g.role-mark > line,'
            + ' svg g.role-mark > text, svg g.role-mark > g').length];
})
"""
TILES = """
Array.from(document.querySelectorAll('.tile')).map(function (tile) {
  return [tile.dataset.metric, tile.querySelector('.value').textContent.trim()];
})
"""


@dataclass
class Opened:
    data: dict[str, Any]
    specs: dict[str, Any]
    load: PageLoad
    marks: dict[str, int]
    tiles: dict[str, str]
    screenshot: Path
    pdf: Path


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, rollout: Path) -> Opened:
    base = tmp_path_factory.mktemp("report-browser")
    with migrated(base / "wh") as warehouse:
        fill(warehouse, rollout, extra={"roster": [orjson.dumps(HOSTILE_USER)]})
        data = read_report(warehouse)
    paths = write_report(data, base / "out", ["html", "pdf"])
    page, numbers, pdf = paths
    html = page.read_text()
    specs = json.loads(
        html.split('<script type="application/json" id="chart-specs">', 1)[1].split("</script>")[0]
    )
    with Chromium(find_chromium()) as browser:
        load = browser.open(page)
        marks = dict(browser.evaluate(MARKS_PER_CHART))
        tiles = dict(browser.evaluate(TILES))
        screenshot = base / "report.png"
        screenshot.write_bytes(browser.screenshot())
    return Opened(json.loads(numbers.read_text()), specs, load, marks, tiles, screenshot, pdf)


def test_the_page_loads_without_an_error_or_a_request(opened: Opened) -> None:
    assert opened.load.loaded
    assert opened.load.errors == []
    assert opened.load.requests == []  # its department named an image on another host


def test_every_chart_draws_marks(opened: Opened) -> None:
    assert opened.load.charts_drawn == len(opened.specs) == 8
    assert set(opened.marks) == set(opened.specs)
    assert {name: count for name, count in opened.marks.items() if count == 0} == {}


def test_the_tiles_show_the_numbers(opened: Opened) -> None:
    for tile in opened.data["headline"]:
        value = tile["value"]
        shown = f"{value:.1f}" if tile["metric"] == "ticket_rate_per_1000" else f"{value:.1%}"
        assert opened.tiles[tile["metric"]] == shown


def test_a_screenshot_is_written(opened: Opened) -> None:
    shot = opened.screenshot.read_bytes()
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(shot[16:20], "big"), int.from_bytes(shot[20:24], "big")
    assert width == 1000 and height > 3000  # the whole page, every section


def test_the_pdf_has_pages_with_text(opened: Opened) -> None:
    info = subprocess.run(["pdfinfo", str(opened.pdf)], capture_output=True, text=True)
    pages = int(next(line for line in info.stdout.splitlines() if line.startswith("Pages:"))[6:])
    assert pages >= 3
    text = subprocess.run(
        ["pdftotext", "-layout", str(opened.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Passwordless rollout: weekly review" in text
    assert opened.data["week"] in text
    enrollment = next(t for t in opened.data["headline"] if t["metric"] == "enrollment_rate")
    assert f"{enrollment['value']:.1%}" in text
    assert "Phase gates" in text and "Data health" in text
    # the charts are drawn as vectors, their labels text in the PDF
    assert "rollout week" in text and "tickets per 1,000 users" in text


def test_the_check_sees_a_request_and_an_error(tmp_path: Path) -> None:
    """The same browser check on a page that breaks both rules: it must say so."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="http://report-test.invalid/pixel.png">'
        '<script>console.error("broken on purpose"); window.reportRendered = 0;</script>'
        "</body></html>"
    )
    with Chromium(find_chromium()) as browser:
        load = browser.open(page)
    assert load.requests == ["http://report-test.invalid/pixel.png"]
    assert any("broken on purpose" in error for error in load.errors)
