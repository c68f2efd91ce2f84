"""The HTML report: self-contained, escaped, and drawn, as headless Chromium renders it."""

from __future__ import annotations

import re
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from tests.publishing import services
from tests.publishing.conftest import NASTY, SCRIPT_CAMPAIGN
from warehouse.report_html import ReportResult, build_report

# tab10's second colour (the second channel's curve); viridis, the heat map, has no orange.
ORANGE = ((200, 256), (100, 160), (0, 60))
# viridis' dark purple end (the lowest LTV cells).
PURPLE = ((40, 100), (0, 40), (60, 120))


@pytest.fixture(scope="module")
def chromium() -> str:
    path = services.find_chromium()
    if path is None:
        services.missing("Chromium", "apt-get install -y chromium")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def report(warehouse_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(warehouse_v1, tmp_path_factory.mktemp("reports"))


def _chromium(chromium: str, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def _pixels(png: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> int:
    rgb = (png[..., :3] * 255).astype(int) if png.dtype.kind == "f" else png[..., :3]
    mask = np.ones(rgb.shape[:2], dtype=bool)
    for channel, (low, high) in enumerate(ranges):
        mask &= (rgb[..., channel] >= low) & (rgb[..., channel] < high)
    return int(mask.sum())


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_charts_draw_in_chromium(chromium: str, report: ReportResult, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _chromium(chromium, tmp_path, report.html, f"--screenshot={shot}", "--window-size=1280,2000")
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert _pixels(pixels, ORANGE) > 200, "no LTV curve drawn"
    assert _pixels(pixels, PURPLE) > 2_000, "no heat map drawn"


def test_hostile_values_are_escaped_in_the_rendered_page(
    chromium: str, report: ReportResult, tmp_path: Path
) -> None:
    dom = _chromium(chromium, tmp_path, report.html, "--dump-dom").stdout
    assert "<script" not in dom.lower()
    assert "onerror" not in re.sub(r"&lt;.*?&gt;", "", dom)  # only inside escaped text
    assert '&lt;script&gt;alert("ga-ltv")&lt;/script&gt;' in dom
    parser = _Tags()
    parser.feed(report.html.read_text("utf-8"))
    texts = "".join(parser.text)
    for value in NASTY:
        if value.strip() and "\r" not in value:
            assert value in texts, value
    assert SCRIPT_CAMPAIGN in texts
    assert {tag for tag, _ in parser.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "section",
        "figure", "figcaption", "img", "table", "thead", "tbody", "tr", "th", "td", "small",
    }  # fmt: skip


def test_report_is_self_contained_and_private(report: ReportResult) -> None:
    page = report.html.read_text("utf-8")
    parser = _Tags()
    parser.feed(page)
    images = [attrs["src"] or "" for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 2 and all(s.startswith("data:image/png;base64,") for s in images)
    assert not re.search(r"(?:https?:)?//[\w.-]+", re.sub(r"base64,[^\"]+", "", page))
    assert "default-src 'none'" in page
    assert report.month == "2024-03"
    for path in (report.html, *report.charts["123456789"]):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" or path.suffix == ".html"
    assert stat.S_IMODE(report.html.parent.stat().st_mode) == 0o700
