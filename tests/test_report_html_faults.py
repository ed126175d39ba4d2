"""The HTML load report of a run with faults and impaired links: faults on every chart's time
axis and in a table, one row per link profile, recovery tiles, and the media shape."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sealrtc.cli.display import LineDisplay
from sealrtc.cli.output import load_summary
from sealrtc.report import judge
from sealrtc.report.html import render_html
from sealrtc.report.media_line import media_line
from sealrtc.report.model import LoadReport, ScenarioInfo
from sealrtc.report.plot import Series, Span, line_chart

from .report_fixture import sample_report
from .test_report_html import EVIL, assert_self_contained, elements, open_watched, watchful_chromium

pytestmark = pytest.mark.unit


def _summary(p50: float, p95: float, top: float, count: int = 4) -> dict[str, Any]:
    return {"count": count, "p50": p50, "p90": p95, "p95": p95, "p99": top, "max": top}


def _link(offered: int, dropped: int, queue: int, delay: float | None) -> dict[str, Any]:
    return {
        "offered": offered,
        "dropped": dropped,
        "dropped_percent": round(100 * dropped / offered, 2) if offered else None,
        "queue_dropped": queue,
        "delivered": offered - dropped,
        "duplicated": 0,
        "mean_delay_ms": delay,
    }


def _profile(name: str, planned: int, video_p95: float, lost: int, freezes: int, availability: float,
             reconnects: int, down: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    metrics = sample_report()["metrics"]
    metrics.update(
        latency_video_ms=_summary(120.0, video_p95, video_p95 * 2),
        frames={"sent": 800, "received": 1000, "decrypted": 1000, "decoded": 0, "lost": lost},
        freezes={"count": freezes, "total_ms": 400.0 * freezes},
        reconnects=reconnects,
        availability_percent=availability,
    )
    return {
        "profile": name,
        "participants": {"planned": planned, "joined": planned, "failed": 0, "intruders": 0},
        "metrics": metrics,
        "impairment": {"up": _link(0, 0, 0, None), "down": down},
    }


def fault_report() -> dict[str, Any]:
    """The fixture's run with a relay restart at 6 s (one subscriber did not recover), a pause
    from 14 s to 17 s, a 3g share of subscribers and a 600 kbit/s 640x360 15 fps shape."""
    report = sample_report()
    report["faults"] = [
        {"spec": "relay-restart@6s", "kind": "relay-restart", "at_s": 6.0, "length_s": 0.0, "watched": 12,
         "lost_media": 12, "recovered": 11, "recovery_ms": _summary(1842.2, 2051.3, 2051.3, 11)},
        {"spec": "relay-pause@14s+3s", "kind": "relay-pause", "at_s": 14.0, "length_s": 3.0, "watched": 12,
         "lost_media": 12, "recovered": 12, "recovery_ms": _summary(3120.0, 3400.0, 3512.5, 12)},
    ]  # fmt: skip
    report["profiles"] = [
        _profile("down=3g", 4, 7188.5, 114, 10, 64.45, 5, _link(4127, 1220, 1159, 232.63)),
        _profile("none", 11, 162.3, 12, 1, 86.2, 14, _link(0, 0, 0, None)),
    ]
    report["metrics"].update(
        reconnects=19, time_to_recover_ms=_summary(1862.7, 2725.9, 3512.5, 23), outage_ms=11498.0,
        availability_percent=78.66,
    )  # fmt: skip
    report["scenario"].update(
        media="synthetic", video_codec="vp8", video_bitrate=600, resolution="640x360", fps=15, audio=True,
        video=True, room_shapes=[],
    )  # fmt: skip
    return report


class Tables(HTMLParser):
    """Every table's rows (the text of each cell), under the title of the ``<h2>`` before it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.heading = ""
        self.where = ""
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.where, self.heading = "h2", ""
        elif tag == "table":
            self.tables[self.heading] = []
        elif tag == "tr" and self.heading in self.tables:
            self.tables[self.heading].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self.where = ""
        elif tag in ("td", "th") and self.cell is not None:
            self.tables[self.heading][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.where == "h2":
            self.heading += data
        if self.cell is not None:
            self.cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    parser.close()
    return parser.tables


def charts(page: str) -> list[str]:
    return re.findall(r"<svg class=\"plot\".*?</svg>", page, re.S)


# -- faults on the time axis and in their table -----------------------------------------------------


def test_every_chart_marks_every_fault() -> None:
    page = render_html(fault_report())
    svgs = charts(page)
    assert len(svgs) == 8
    for svg in svgs:
        # the restart is an instant (a dashed line), the pause a band 3 s wide; both labelled
        assert svg.count("<title>relay-restart@6s</title><line ") == 1, svg[:200]
        assert svg.count("<title>relay-pause@14s+3s</title><rect ") == 1
        assert ">relay-restart@6s</text>" in svg and ">relay-pause@14s+3s</text>" in svg
    band = re.search(r"<title>relay-pause@14s\+3s</title><rect x=\"([\d.]+)\" y=\"[\d.]+\" width=\"([\d.]+)\"", svgs[0])
    line = re.search(r"<title>relay-restart@6s</title><line x1=\"([\d.]+)\"", svgs[0])
    assert band is not None and line is not None
    # on the same axis (0..30 s): 6 s and 14 s are 8 s apart, and the band is 3 s wide
    per_second = float(band[2]) / 3
    assert float(band[1]) - float(line[1]) == pytest.approx(8 * per_second, abs=0.05)
    assert_self_contained(page)


def test_faults_table() -> None:
    rows = tables(render_html(fault_report()))["Faults"]
    assert rows[0] == ["fault", "kind", "at", "length", "watched", "lost media", "recovered", "recovery p50",
                       "recovery p95", "recovery max"]  # fmt: skip
    assert rows[1] == ["relay-restart@6s", "relay-restart", "6 s", "instant", "12", "12", "11", "1,842 ms",
                       "2,051 ms", "2,051 ms"]  # fmt: skip
    assert rows[2] == ["relay-pause@14s+3s", "relay-pause", "14 s", "3 s", "12", "12", "12", "3,120 ms",
                       "3,400 ms", "3,512 ms"]  # fmt: skip
    page = render_html(fault_report())
    # the restart left one subscriber without media: its row is marked, the pause's is not
    assert '<tr class="problem"><td class="text">relay-restart@6s' in page
    assert '<tr class=""><td class="text">relay-pause@14s+3s' in page


def test_fault_without_a_time_is_in_the_table_only_and_strings_are_escaped() -> None:
    report = fault_report()
    report["faults"] = [{"spec": EVIL, "kind": "external", "at_s": None, "length_s": None}]
    page = render_html(report)
    assert "<script" not in page
    assert all("&lt;script&gt;" not in svg for svg in charts(page))
    assert tables(page)["Faults"][1][:4] == [EVIL, "external", "\u2014", "\u2014"]
    assert_self_contained(page)


def test_a_run_without_faults_has_no_fault_marks() -> None:
    page = render_html(sample_report())
    assert "Faults" not in tables(page) and "<h2>Faults</h2>" not in page
    assert "fill-opacity" not in page


def test_a_span_stretches_the_time_axis() -> None:
    """A fault after the last interval (the run stopped on it) is still on the chart."""
    svg = line_chart("t", [1.0, 2.0, 3.0], [Series("a", [1.0, 2.0, 3.0])], y_label="n",
                     spans=[Span(8.0, 4.0, "late")])  # fmt: skip
    ticks = [float(t) for t in re.findall(r'text-anchor="middle" fill="#374151">([\d.]+)</text>', svg)]
    assert max(ticks) >= 12.0 and ">late</text>" in svg
    # a span with no length is a line; a broken one (NaN, negative length) is left out
    spans = [Span(1.5, None, "now"), Span(float("nan"), 1.0, "nan"), Span(1.0, -2.0, "back")]
    svg = line_chart("t", [1.0, 2.0], [Series("a", [1.0, 2.0])], y_label="n", spans=spans)
    assert "<title>now</title><line " in svg and ">nan</text>" not in svg and ">back</text>" not in svg


# -- one row per link profile -------------------------------------------------------------------------


def test_links_table_has_a_row_per_profile() -> None:
    rows = tables(render_html(fault_report()))["Links"]
    assert rows[0] == ["link profile", "participants", "video p95", "lost", "freezes", "availability", "reconnects",
                       "uplink (sent)", "downlink (received)"]  # fmt: skip
    assert rows.pop(1) == ["dropped", "queue", "delay"] * 2
    # the 3g share: its downlink impaired, its uplink not (dashes, not zeros)
    assert rows[1] == ["down=3g", "4 / 4", "7,188 ms", "114", "10", "64.5 %", "5", "\u2014", "\u2014", "\u2014",
                       "29.6 %", "1,159", "233 ms"]  # fmt: skip
    assert rows[2] == ["none", "11 / 11", "162 ms", "12", "1", "86.2 %", "14"] + ["\u2014"] * 6
    assert len(rows) == 3
    page = render_html(fault_report())
    assert '<th colspan="3" class="group">uplink (sent)</th>' in page and '<th rowspan="2" class="text">' in page


def test_links_table_is_absent_without_profiles_and_survives_odd_values() -> None:
    assert "<h2>Links</h2>" not in render_html(sample_report())
    report = fault_report()
    report["profiles"][0]["impairment"]["down"] = {"offered": "many", "dropped_percent": EVIL}
    report["profiles"][1] = {"profile": EVIL, "impairment": {"up": {"offered": 10, "dropped_percent": "x"}}}
    page = render_html(report)
    rows = tables(page)["Links"][2:]
    assert rows[0][-3:] == ["\u2014"] * 3
    assert rows[1][0] == EVIL and rows[1][7:10] == ["\u2014", "\u2014", "\u2014"]
    assert "<script" not in page
    assert_self_contained(page)


# -- recovery tiles -----------------------------------------------------------------------------------


def cards(page: str) -> dict[str, str]:
    found = re.findall(r'<div class="label">(.*?)</div><div class="value">(.*?)</div>', page)
    return {label: re.sub(r"<[^>]+>", "", value) for label, value in found}


def test_recovery_tiles_for_a_run_with_faults_or_reconnects() -> None:
    shown = cards(render_html(fault_report()))
    assert shown["reconnects"] == "19"
    assert shown["time to recover p95"] == "2,726 ms"
    assert shown["availability"] == "78.7 %"
    assert '<div class="card warn"><div class="label">availability</div>' in render_html(fault_report())
    # reconnects without a planned fault (the server went away on its own) show them too
    report = sample_report()
    report["metrics"].update(reconnects=2, time_to_recover_ms=None, availability_percent=None)
    shown = cards(render_html(report))
    assert shown["reconnects"] == "2" and shown["time to recover p95"] == "\u2014"
    assert shown["availability"] == "\u2014"


def test_no_recovery_tiles_for_a_plain_run() -> None:
    report = sample_report()
    report["metrics"].update(reconnects=0, availability_percent=100.0)
    shown = cards(render_html(report))
    assert "reconnects" not in shown and "availability" not in shown and "time to recover p95" not in shown
    assert "joined / planned" in shown


# -- the media shape ------------------------------------------------------------------------------------


def _shape(**settings: object) -> ScenarioInfo | None:
    base = {"media": "synthetic", "video_codec": "vp8", "video_bitrate": 0, "resolution": None, "fps": 0,
            "audio": True, "video": True, "room_shapes": []}  # fmt: skip
    return ScenarioInfo.from_json(base | settings)


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"video_bitrate": 600, "resolution": "640x360", "fps": 15, "audio": False},
         "synthetic VP8 640x360 15 fps 600 kbit/s, no audio"),
        ({"video_bitrate": 600, "resolution": "640x360", "fps": 15}, "synthetic VP8 640x360 15 fps 600 kbit/s"),
        ({}, "synthetic VP8"),  # the source's own size, rate and bitrate
        ({"media": "talk.mp4", "video_codec": "h264", "fps": 25}, "talk.mp4 H264 25 fps"),
        ({"video": False}, "synthetic, audio only"),
        ({"room_shapes": [{"count": 1, "fps": 5}], "fps": 15}, "synthetic VP8 per room (see scenario)"),
    ],
)  # fmt: skip
def test_media_line(settings: dict[str, object], line: str) -> None:
    assert media_line(_shape(**settings)) == line


def test_media_line_of_an_older_report_is_its_media_alone() -> None:
    assert media_line(ScenarioInfo.from_json({"media": "synthetic"})) == "synthetic"
    assert media_line(ScenarioInfo.from_json({})) == "-" and media_line(None, unknown="?") == "?"


def test_media_shape_in_the_html_header_and_the_summary_title() -> None:
    report = fault_report()
    report["scenario"]["audio"] = False
    text = " ".join(elements(render_html(report)).text)
    assert "media: synthetic VP8 640x360 15 fps 600 kbit/s, no audio" in text
    stream = io.StringIO()
    load_summary(LineDisplay("load", stream=stream), judge(LoadReport.from_json(report), []))
    title = next(line for line in stream.getvalue().splitlines() if "summary (" in line)
    assert title.rstrip().endswith(", media: synthetic VP8 640x360 15 fps 600 kbit/s, no audio)"), title


# -- a kind that was not sent is absent, not zero ----------------------------------------------------------


def test_a_kind_not_sent_is_shown_as_absent() -> None:
    report = fault_report()
    report["scenario"]["audio"] = False
    no_audio = {"sent_video_kbps": 601.0, "sent_audio_kbps": 0.0, "received_video_kbps": 590.0,
                "received_audio_kbps": 0.0}  # fmt: skip
    report["metrics"]["bitrate"] = dict(no_audio)
    report["rooms"][0]["metrics"]["bitrate"] = dict(no_audio)
    report["rooms"][1]["metrics"]["bitrate"] = dict(no_audio, received_audio_kbps=None, sent_audio_kbps=None)
    report["rooms"][2]["metrics"]["bitrate"] = dict(no_audio, sent_audio_kbps=48.0)  # sent, all of it lost
    page = render_html(report)
    shown = cards(page)
    assert shown["audio received"] == "\u2014" and shown["video received"] == "590 kbit/s"
    rooms = tables(page)["Rooms"]
    assert rooms[0][5] == "received kbit/s" and rooms[1][4:6] == ["video", "audio"]  # under "received"
    audio = 3 + 4 + 1  # room, joined, failed; video and audio latency p50/p95; received video
    assert [row[audio] for row in rooms[2:]] == ["\u2014", "\u2014", "0"]
    assert [row[audio - 1] for row in rooms[2:]] == ["590"] * 3
    bitrate_chart = next(svg for svg in charts(page) if "Bitrate" in svg)
    assert ">received video</text>" in bitrate_chart and ">received audio</text>" not in bitrate_chart
    stream = io.StringIO()
    load_summary(LineDisplay("load", stream=stream), judge(LoadReport.from_json(report), []))
    said = " ".join(stream.getvalue().split())
    assert "video sent 601 received 590, audio sent - received - (per participant)" in said


def test_a_kind_that_was_sent_shows_its_zero() -> None:
    report = fault_report()
    report["metrics"]["bitrate"]["received_audio_kbps"] = 0.0
    assert cards(render_html(report))["audio received"] == "0 kbit/s"


# -- in Chromium ----------------------------------------------------------------------------------------

FAULT_MARKS = """
() => [...document.querySelectorAll('svg.plot')].map(svg => ({
  label: svg.getAttribute('aria-label'),
  marks: [...svg.querySelectorAll('g > text')].filter(t => t.getBoundingClientRect().width > 0
    && t.getBoundingClientRect().right <= svg.getBoundingClientRect().right).map(t => t.textContent),
  band: Math.max(0, ...[...svg.querySelectorAll('g > rect')].map(r => r.getBoundingClientRect().width)),
}))
"""
WIDEST_TABLES = """
() => [...document.querySelectorAll('h2')].filter(h => ['Faults', 'Rooms', 'Links'].includes(h.textContent)).map(h => {
  const wrap = h.nextElementSibling;
  return [h.textContent, wrap.scrollWidth <= wrap.clientWidth];
})
"""


@pytest.mark.browser
@pytest.mark.network
async def test_faults_and_links_render_in_chromium(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(fault_report()), encoding="utf-8")
    async with watchful_chromium() as browser:
        page = await open_watched(browser, path.as_uri())
        plots = await page.call(FAULT_MARKS)
        fitting = await page.call(WIDEST_TABLES)
        errors = [line for line in page.console if not line.startswith(("log:", "info:", "debug:"))]
        assert errors == [] and browser.log_errors == [], (errors, browser.log_errors)
        assert browser.requests == [path.as_uri()]
    assert len(plots) == 8
    for plot in plots:
        # both labels are visible inside their chart, and the 3 s pause is a band a few px wide
        assert sorted(plot["marks"]) == ["relay-pause@14s+3s", "relay-restart@6s"], plot
        assert plot["band"] > 10, plot
    assert fitting == [["Faults", True], ["Rooms", True], ["Links", True]]  # no horizontal scrolling at 1280 px
