"""Merge shard reports into one, exactly: the raw worker data of every shard is pooled and the
report is built again from it (HdrHistograms merged bucket for bucket, counters summed)."""

from __future__ import annotations

from typing import Any

from ..errors import SealError
from .aggregate import build_report

SCENARIO_KEYS = ("rooms", "publishers", "subscribers", "intruders", "e2ee", "suite", "probe", "run_id")


class MergeError(SealError):
    """The reports cannot be merged (one line: which file and why)."""


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``reports``: ``(file name, report)`` pairs of one run's shards."""
    if not reports:
        raise MergeError("no reports to merge")
    first_name, first = reports[0]
    finals: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    planned: dict[str, int] = {}
    names: list[str] = []
    shards: list[int] = []
    errors: list[str] = []
    for name, report in reports:
        raw = report.get("raw")
        if not isinstance(raw, dict) or "finals" not in raw:
            raise MergeError(f"{name} has no raw section: it is not a sealrtc load report (or is too old)")
        for key in SCENARIO_KEYS:
            if report.get("scenario", {}).get(key) != first.get("scenario", {}).get(key):
                raise MergeError(f"{name} is from another scenario than {first_name} ({key} differs)")
        shard = int(raw.get("shard", 0))
        if shard in shards:
            if int(report.get("scenario", {}).get("shard", {}).get("count", 1)) == 1:
                raise MergeError(
                    f"{name} and {first_name} are two separate runs, not shards of one run "
                    "(sealrtc load --shard I/N --run-id ID makes mergeable shards)"
                )
            raise MergeError(f"{name} repeats shard {shard}")
        shards.append(shard)
        finals += raw["finals"]
        snapshots += raw["snapshots"]
        for room, n in raw.get("planned_per_room", {}).items():
            planned[room] = planned.get(room, 0) + int(n)
        for room in report.get("rooms", []):
            if room["room"] not in names:
                names.append(room["room"])
        errors += [f"shard {shard}: {e}" for e in report.get("errors", [])]
    count = int(first.get("scenario", {}).get("shard", {}).get("count", len(reports)))
    missing = sorted(set(range(count)) - set(shards))
    scenario = dict(first.get("scenario", {}))
    scenario["shard"] = {"index": None, "count": count, "merged": sorted(shards)}
    scenario["workers"] = sum(int(r.get("scenario", {}).get("workers", 0)) for _, r in reports)
    merged = build_report(
        scenario=scenario,
        room_names=names,
        finals=finals,
        snapshots=snapshots,
        started_at=min(str(r.get("started_at", "")) for _, r in reports),
        duration_s=max(float(r.get("duration_s", 0)) for _, r in reports),
    )
    whole = sum(planned.values())
    if merged["participants"]["planned"] < whole:  # shards whose workers never reported
        merged["participants"]["failed"] += whole - merged["participants"]["planned"]
        merged["participants"]["planned"] = whole
    if missing:
        errors.insert(0, f"shards missing from the merge: {', '.join(map(str, missing))} of {count}")
    merged["errors"] = errors[:50]
    merged["missing_shards"] = missing
    merged["interrupted_shards"] = sorted(
        int(r.get("raw", {}).get("shard", 0)) for _, r in reports if r.get("verdict") == "interrupted"
    )
    merged["raw"] = {"shard": None, "finals": finals, "snapshots": snapshots, "planned_per_room": planned}
    return merged
