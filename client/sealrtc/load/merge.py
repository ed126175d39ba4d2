"""Merge shard reports into one, exactly: the raw worker data of every shard is pooled and the
report is built again from it by the one builder (:func:`.aggregate.build_report`), with
HdrHistograms merged bucket for bucket, counters summed, and every room's planned participants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import SealError
from ..report.model import LoadReport, RawData, ScenarioInfo, ShardInfo
from ..report.records import WorkerFinal, WorkerSnapshot
from .aggregate import build_report
from .profiles import profile_reports

MISSING_SHOWN = 20
"""Missing shard numbers named in the error line (the report's ``missing_shards`` lists all)."""
SCENARIO_KEYS = ("rooms", "publishers", "subscribers", "intruders", "e2ee", "suite", "probe", "run_id")


class MergeError(SealError):
    """The reports cannot be merged (one line: which file and why)."""


def _shard_count(scenario: ScenarioInfo | None, default: int) -> int:
    return scenario.shard.count if scenario is not None and scenario.shard is not None else default


def merge_reports(reports: Sequence[tuple[str, LoadReport]]) -> LoadReport:
    """``reports``: ``(file name, report)`` pairs of one run's shards."""
    if not reports:
        raise MergeError("no reports to merge")
    first_name, first = reports[0]
    first_scenario = first.scenario or ScenarioInfo()
    finals: list[WorkerFinal] = []
    snapshots: list[WorkerSnapshot] = []
    planned: dict[str, int] = {}
    names: list[str] = []
    shards: list[int] = []
    errors: list[str] = []
    for name, report in reports:
        raw = report.raw
        if raw is None:
            raise MergeError(f"{name} has no raw section: it is not a sealrtc load report (or is too old)")
        scenario = report.scenario or ScenarioInfo()
        for key in SCENARIO_KEYS:
            if getattr(scenario, key) != getattr(first_scenario, key):
                raise MergeError(f"{name} is from another scenario than {first_name} ({key} differs)")
        shard = raw.shard or 0
        if shard in shards:
            if _shard_count(scenario, 1) == 1:
                raise MergeError(
                    f"{name} and {first_name} are two separate runs, not shards of one run "
                    "(sealrtc load --shard I/N --run-id ID makes mergeable shards)"
                )
            raise MergeError(f"{name} repeats shard {shard}")
        shards.append(shard)
        finals += raw.finals
        snapshots += raw.snapshots
        for room, n in raw.planned_per_room.items():
            planned[room] = planned.get(room, 0) + n
        for room_report in report.rooms:
            if room_report.room is not None and room_report.room not in names:
                names.append(room_report.room)
        errors += [f"shard {shard}: {e}" for e in report.errors]
    count = _shard_count(first_scenario, len(reports))
    for name, report in reports:
        if _shard_count(report.scenario, count) != count:
            raise MergeError(f"{name} says the run has {_shard_count(report.scenario, count)} shards, "
                             f"{first_name} says {count}")  # fmt: skip
        if report.raw is not None and not 0 <= (report.raw.shard or 0) < count:
            raise MergeError(f"{name} is shard {report.raw.shard}, not one of the run's {count}")
    missing = sorted(set(range(count)) - set(shards))
    if missing:
        shown = ", ".join(map(str, missing[:MISSING_SHOWN])) + (
            f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        )
        errors.insert(0, f"shards missing from the merge: {shown} of {count}")
    workers = sum(int(r.scenario.workers or 0) for _, r in reports if r.scenario is not None)
    scenario = dataclasses.replace(first_scenario, shard=ShardInfo(None, count, tuple(sorted(shards))), workers=workers)
    return build_report(
        scenario=scenario,
        room_names=names,
        finals=finals,
        snapshots=snapshots,
        planned_per_room=planned,
        started_at=min(r.started_at or "" for _, r in reports),
        duration_s=max(float(r.duration_s or 0) for _, r in reports),
        errors=errors,
        raw=RawData(None, tuple(finals), tuple(snapshots), planned),
        missing_shards=missing,
        interrupted_shards=sorted(
            (r.raw.shard or 0) for _, r in reports if r.raw is not None and r.verdict == "interrupted"
        ),
        profiles=profile_reports(finals, [p.profile for _, r in reports for p in r.profiles if p.profile]),
    )
