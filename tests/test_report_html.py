"""The HTML load report: one self-contained page, escaped, and clean in a real (headless) Chromium."""

from __future__ import annotations

import base64
import copy
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealrtc.report import evaluate, intervals_csv, parse
from sealrtc.report.assertions import COUNTERS, FUNCTIONS, HISTOGRAMS
from sealrtc.report.html import CSP, render_html
from sealrtc.report.plot import Series, line_chart, nice_ticks

from .cdp import Chromium, Page
from .report_fixture import ROOMS, sample_report
from .rtc_helpers import require_namespace

pytestmark = pytest.mark.unit

EVIL = "<script>alert(1)</script>"
FORBIDDEN = ("http://", "https://", "<script", "src=", "@import", "url(", "javascript:")


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def assert_self_contained(page: str) -> None:
    parsed = elements(page)
    names = [tag for tag, _ in parsed.tags]
    assert names.count("html") == names.count("body") == names.count("style") == 1
    assert "script" not in names and "iframe" not in names and "img" not in names
    for tag, attrs in parsed.tags:
        assert "src" not in attrs, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name == "href":
                assert value is not None and value.startswith("data:"), (tag, value)
            assert "://" not in (value or ""), (tag, name, value)


# -- the page as text ------------------------------------------------------------------------------


def test_one_self_contained_file() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    for needle in FORBIDDEN:
        assert needle not in page, needle
    assert_self_contained(page)
    # the CSP forbids loading anything, should escaping ever fail
    csp = [a for tag, a in elements(page).tags if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [{"http-equiv": "Content-Security-Policy", "content": CSP}] and "default-src 'none'" in CSP


def test_rooms_assertions_and_headline() -> None:
    report = sample_report()
    page = render_html(report)
    for room in ROOMS:
        assert f"<td>{room}</td>" in page
    assert page.count('<tr class="problem"><td>load-3</td>') == 1  # the room with loss and a freeze
    for a in report["assertions"]:
        assert f'<td class="expr">{html.escape(a["expr"])}</td>' in page
    assert page.count('<span class="no">FAIL</span>') == 1
    assert page.count('<span class="ok">PASS</span>') == len(report["assertions"]) - 1
    assert "p99(latency_ms) = 83.199 is not &lt; 50" in page
    assert '<span class="verdict fail">fail</span>' in page
    assert "4 of 5 assertions passed" in page
    text = " ".join(elements(page).text)
    assert "1 subscriber in 4 decodes" in text
    assert "15 / 15" in text and "E2EE on (suite 6)" in text and "3 rooms \u00d7 (1 pub, 4 sub, 1 intruder)" in text
    assert page.count("<svg") == 8 and 'class="warning"' not in page


def test_every_report_string_is_escaped() -> None:
    report = sample_report()
    report["rooms"][0]["room"] = EVIL
    report["assertions"][0]["expr"] = EVIL
    report["assertions"][1]["reason"] = EVIL
    report["scenario"]["target"] = f"whip http://10.0.0.1/{EVIL}"
    report["scenario"]["media"] = '" onload="alert(1)'
    report["started_at"] = EVIL
    report["verdict"] = '"><script>alert(1)</script>'
    report["metrics"]["decrypt_failures"][EVIL] = 1
    report["generator"]["saturated"] = True
    report["generator"]["saturation_reasons"] = [EVIL]
    page = render_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"<td>{'&lt;script&gt;alert(1)&lt;/script&gt;'}</td>" in page  # the room row
    assert_self_contained(page)  # the URL in the target is text, never an attribute
    assert "whip http://10.0.0.1/" in " ".join(elements(page).text)


def test_runner_extras_default_assertions_and_failed_joins() -> None:
    """What ``sealrtc load`` adds beyond the fixture: default assertions, a ``failed`` level."""
    report = sample_report()
    report["assertions"][0]["default"] = True
    for row in report["intervals"]:
        row["failed"] = 1 if row["t"] >= 10 else 0
    page = render_html(report)
    assert page.count('<span class="tag">default</span>') == 1
    participants = page[page.index("<figcaption>Participants joined") :]
    participants = participants[: participants.index("</svg>")]
    assert participants.count("<path ") == 3 and ">failed</text>" in participants
    assert ">failed</text>" not in render_html(sample_report())


def test_saturated_generator_is_flagged_in_red() -> None:
    report = sample_report()
    report["generator"]["saturated"] = True
    report["generator"]["saturation_reasons"] = ["worker 1 CPU 97 %", "worker 2 loop lag p99 180 ms"]
    report["verdict"] = "saturated"
    page = render_html(report)
    assert '<div class="warning" role="alert">The load generator was saturated' in page
    assert "<li>worker 1 CPU 97 %</li><li>worker 2 loop lag p99 180 ms</li>" in page
    assert '<span class="verdict saturated">saturated</span>' in page


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"intervals": [], "rooms": [], "assertions": [], "metrics": None, "generator": None},
        {"intervals": [{"t": None}, "junk", {"t": 1.0, "fps": "fast", "latency_p50": float("nan")}]},
    ],
)
def test_empty_and_odd_reports_render(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert page.count("no data") == 8
    assert "no rooms" in page and "no assertions" in page
    assert_self_contained(page)


def test_null_intervals_leave_gaps() -> None:
    report = sample_report()
    for row in report["intervals"][:5]:
        row["latency_video_p50"] = row["latency_video_p95"] = None
    report["intervals"][10]["latency_video_p95"] = None
    page = render_html(report)
    assert page.count("no data") == 0
    latency = page[page.index("End-to-end latency, video and audio") :]
    latency = latency[: latency.index("</svg>")]
    p95 = re.findall(r'<path d="([^"]+)"[^>]*stroke="#d55e00"', latency)[0]
    assert p95.count("M") == 2  # a gap at t = 11


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PATHS: list[tuple[str | int, ...]] = [
    (),
    ("scenario",),
    ("scenario", "target"),
    ("participants",),
    ("participants", "joined"),
    ("metrics",),
    ("metrics", "latency_ms"),
    ("metrics", "latency_ms", "p95"),
    ("metrics", "frames"),
    ("metrics", "frames", "lost"),
    ("metrics", "decrypt_failures"),
    ("metrics", "intruder_failures"),
    ("metrics", "freezes"),
    ("rooms",),
    ("rooms", 0),
    ("rooms", 1, "metrics"),
    ("rooms", 2, "room"),
    ("generator",),
    ("generator", "loop_lag_ms"),
    ("generator", "saturation_reasons"),
    ("assertions",),
    ("assertions", 1),
    ("intervals",),
    ("intervals", 0),
    ("intervals", 5, "latency_p95"),
    ("intervals", 6, "t"),
    ("verdict",),
    ("duration_s",),
]
PRISTINE = sample_report()
EXPRESSIONS = [parse(f"{name} >= 0") for name in COUNTERS] + [
    parse(f"{f}({h}) >= 0") for f in FUNCTIONS for h in HISTOGRAMS
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=3))
def test_any_json_in_any_place_renders_safely(changes: list[tuple[tuple[str | int, ...], Any]]) -> None:
    """The lead's report may evolve (or break): rendering never raises and never leaks markup."""
    report: Any = copy.deepcopy(PRISTINE)
    for path, value in changes:
        if not path:
            report = value if isinstance(value, dict) else {"junk": value}
            continue
        node = report
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change replaced the parent
    page = render_html(report)
    assert "<script" not in page
    coordinates = re.findall(r' (?:d|cx|cy|x|y|x1|x2|y1|y2|width|height|transform)="([^"]*)"', page)
    assert not any("nan" in c or "inf" in c for c in coordinates)
    assert_self_contained(page)
    intervals_csv(report)
    for assertion in EXPRESSIONS:
        evaluate(assertion, report)


def test_chart_ticks_and_single_points() -> None:
    assert nice_ticks(0, 30, 6) == [0, 5, 10, 15, 20, 25, 30]
    assert nice_ticks(0, 143.2, 4) == [0, 50, 100, 150]
    assert nice_ticks(0, 0, 4, integer=True) == [0, 1]
    assert nice_ticks(0, 9, 4, integer=True) == [0, 5, 10]
    svg = line_chart("one point", [1.0, 2.0, 3.0], [Series("a", [None, 4.0, None])], y_label="ms")
    assert "<path" not in svg and 'r="3"' in svg and "t = 2 s: a 4" in svg
    assert "no data" in line_chart("nothing", [], [Series("a", [])], y_label="ms")


# -- the page in Chromium ---------------------------------------------------------------------------


class WatchfulChromium(Chromium):
    """Also records Log errors (CSP violations, failed loads) and every network request."""

    def __init__(self) -> None:
        super().__init__()
        self.log_errors: list[str] = []
        self.requests: list[str] = []

    def _on_event(self, data: dict[str, Any]) -> None:
        super()._on_event(data)
        params = data.get("params", {})
        if data.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif data.get("method") == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))


@asynccontextmanager
async def watchful_chromium() -> AsyncIterator[WatchfulChromium]:
    require_namespace()
    browser = await WatchfulChromium.start()
    try:
        yield browser
    finally:
        await browser.close()


async def open_watched(browser: Chromium, url: str) -> Page:
    """Like Chromium.new_page, with Log and Network enabled before the page loads."""
    target = await browser.send("Target.createTarget", {"url": "about:blank"})
    attached = await browser.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
    page = Page(browser, attached["sessionId"], target["targetId"])
    browser.pages[page.session_id] = page
    for domain in ("Runtime", "Page", "Log", "Network"):
        await page.send(f"{domain}.enable")
    await page.send(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    await page.send("Page.navigate", {"url": url})
    await page.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
    return page


INSPECT = """
() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const h1 = document.querySelector('h1');
  return {
    title: document.title,
    h1: h1.innerText,
    h1Box: box(h1),
    height: document.documentElement.scrollHeight,
    overflowX: document.documentElement.scrollWidth > window.innerWidth,
    plots: [...document.querySelectorAll('svg.plot')].map(svg => ({
      label: svg.getAttribute('aria-label'),
      box: box(svg),
      lines: [...svg.querySelectorAll('path, polyline')].filter(p =>
        (p.getAttribute('d') || p.getAttribute('points') || '').match(/[0-9.]+[ ,][0-9.]+/)
        && p.getTotalLength() > 0).length,
      texts: [...svg.querySelectorAll('text')].filter(t => box(t)[0] > 0).length,
    })),
    rooms: [...document.querySelectorAll('tbody tr td:first-child')].map(td => td.innerText),
  };
}
"""


@pytest.mark.browser
@pytest.mark.network
async def test_page_renders_cleanly_in_chromium(tmp_path: Path) -> None:
    report = sample_report()
    report["rooms"][2]["room"] = EVIL
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    async with watchful_chromium() as browser:
        page = await open_watched(browser, path.as_uri())
        seen = await page.call(INSPECT)
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": seen["height"], "deviceScaleFactor": 1, "mobile": False},
        )
        shot = await page.send("Page.captureScreenshot", {"format": "png"})
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
        errors = [line for line in page.console if not line.startswith(("log:", "info:", "debug:"))]
        assert errors == [] and browser.log_errors == [], (errors, browser.log_errors)
        assert browser.requests == [path.as_uri()]  # the page itself, nothing else
    assert seen["title"] == "sealrtc load \u2014 fail \u2014 3 rooms, 15 participants"
    assert "sealrtc load" in seen["h1"] and "FAIL" in seen["h1"].upper()
    assert seen["h1Box"][0] > 0 and seen["h1Box"][1] > 0
    assert not seen["overflowX"]
    assert len(seen["plots"]) == 8
    for plot in seen["plots"]:
        assert plot["box"][0] > 300 and plot["box"][1] > 100, plot
        assert plot["lines"] >= 1, plot
        assert plot["texts"] >= 8, plot  # legend, ticks, axis labels
    assert EVIL in seen["rooms"]  # shown as text, not run
    assert (tmp_path / "report.png").stat().st_size > 20_000


def test_fixture_is_unchanged_by_rendering() -> None:
    report = sample_report()
    before = copy.deepcopy(report)
    render_html(report)
    assert report == before
