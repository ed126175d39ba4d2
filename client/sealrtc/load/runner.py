"""The parent of a load run: target set-up, worker processes, live view, the report.

Targets: the embedded relay (a ``sealrtc relay`` child process on 127.0.0.1, in the private
namespace the command made), a Janus (rooms created with ``require_e2ee`` and destroyed at the
end unless ``--room`` ids were given), or any WHIP/WHEP server (``BASE/whip/ROOM``,
``BASE/whep/ROOM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import queue as queue_module
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..epochs import EpochKey
from ..report.model import FaultReport, LoadReport, RawData, ScenarioInfo
from ..report.records import WorkerFinal, WorkerMessage, WorkerSnapshot, read_message
from .aggregate import LiveTotals, build_report, relabel
from .environment import without_secrets
from .faults import Fault, fault_reports
from .keying import epoch_schedule
from .plan import Participant, assign, churn_for, churn_plan, plan
from .profiles import assign_links, profile_reports, run_profiles
from .scenario import Scenario
from .shares import profile_name
from .worker import WorkerConfig, worker_main

logger = logging.getLogger(__name__)

FINAL_GRACE = 45.0
"""Seconds after the run's end to wait for workers to close their peers and report."""
START_DELAY = 2.0
"""Seconds between spawning workers and the common start (they import aiortc meanwhile)."""


class LoadError(Exception):
    """The run could not start (one line for the user)."""


@dataclass
class Target:
    kind: str  # "relay" | "janus" | "whip"
    url: str = ""
    room_ids: dict[str, int] = field(default_factory=dict)
    created_rooms: list[int] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        return {"relay": "embedded relay", "janus": f"janus {self.url}", "whip": f"whip {self.url}"}[self.kind]

    def for_workers(self) -> dict[str, Any]:
        if self.kind == "janus":
            return {"kind": "janus", "url": self.url, "rooms": self.room_ids}
        return {"kind": "whip", "base": self.url, "token": self.token}


async def start_relay(duration: float, *, port: int = 0, token: str | None = None) -> Target:
    """The embedded relay as a child process (``port`` 0: any free one; a restart gives the
    port and the token it had)."""
    # A token per run, by environment (never argv): the relay takes only this run's workers.
    # "newest": a scenario may put several publishers in a room (the relay's default refuses them).
    token = token or secrets.token_urlsafe(32)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "relay", "--listen", f"127.0.0.1:{port}", "--duration", str(duration),
        "--publisher-policy", "newest",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        # the relay never holds key material: no secret of ours in its environment, only its token
        env=without_secrets(os.environ, {"SEALRTC_PUBLISH_TOKEN": token, "SEALRTC_SUBSCRIBE_TOKEN": token}),
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    except TimeoutError:
        proc.kill()
        raise LoadError("the embedded relay did not start within 30 s") from None
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise LoadError(f"the embedded relay did not start: {line.strip() or 'no output'}")

    async def drain() -> None:
        assert proc.stderr is not None
        while await proc.stderr.readline():
            pass

    _background.add(asyncio.ensure_future(drain()))
    return Target("relay", f"http://127.0.0.1:{match.group(1)}", process=proc, token=token)


_background: set[asyncio.Future[None]] = set()


async def inject_faults(target: Target, faults: Sequence[Fault], start_at: float, run: LoadRun) -> None:
    """Cause each fault at its time (wall clock ``start_at`` + ``at_s``) on the embedded relay:
    a restart stops the relay process (SIGTERM, SIGKILL after 5 s) and starts a new one on the
    same address with the same token; a pause freezes it (SIGSTOP) and thaws it (SIGCONT), in a
    ``finally``, so a cancelled run never leaves a frozen relay behind."""
    for fault in faults:
        await asyncio.sleep(max(0.0, start_at + fault.at_s - time.time()))  # the fault's time
        process = target.process
        if process is None or process.returncode is not None:
            run.errors.append(f"fault {fault.spec}: the relay is not running")
            continue
        if fault.kind == "relay-restart":
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
            port = int(target.url.rsplit(":", 1)[1])
            left = start_at + run.scenario.duration - time.time()
            try:
                restarted = await start_relay(left + FINAL_GRACE + 30, port=port, token=target.token)
            except LoadError as exc:
                run.errors.append(f"fault {fault.spec}: {exc}")
                return
            target.process = restarted.process
        else:
            process.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(fault.length_s)  # the pause itself
            finally:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGCONT)


async def janus_rooms(url: str, names: list[str], scenario: Scenario, given: bool) -> Target:
    """Create the run's VideoRooms (``require_e2ee`` when E2EE is on), or use the given ids."""
    from ..signaling.janus import JanusError, JanusSession

    target = Target("janus", url)
    if given:
        target.room_ids = {name: int(name) for name in names}
        return target
    try:
        janus = await JanusSession.connect(url)
    except JanusError as exc:  # it names Janus and the URL already
        raise LoadError(str(exc)) from None
    except Exception as exc:
        raise LoadError(f"cannot reach Janus at {url}: {exc}") from None
    try:
        handle = await janus.attach()
        for name in names:
            room = int(name)
            try:
                await create_room(handle, room, scenario)
            except JanusError as exc:
                if exc.code != 427:  # 427: the room exists (another shard created it)
                    raise LoadError(f"Janus refused to create room {room}: {exc}") from None
            else:
                target.created_rooms.append(room)
            target.room_ids[name] = room
        await handle.detach()
    finally:
        await janus.close()
    return target


async def create_room(handle: Any, room: int, scenario: Scenario) -> None:
    """One of the run's VideoRooms (``handle``: a VideoRoom plugin handle); raises JanusError."""
    await handle.message(
        {
            "request": "create",
            "room": room,
            "description": f"sealrtc load {room}",
            "publishers": max(scenario.publishers, 1) + 1,
            "require_e2ee": scenario.e2ee,
            "videocodec": "vp8,h264",
            "notify_joining": True,  # keying v2 publishers advance the epoch on join
            "permanent": False,
        }
    )


JANUS_RETRY = 0.5
"""Seconds between the room keeper's attempts to reach a Janus that went away."""


async def keep_janus_rooms(target: Target, scenario: Scenario, run: LoadRun) -> None:
    """Janus forgets the rooms made over its API when it restarts: hold one session to it and,
    when the session is lost, reach Janus again (every :data:`JANUS_RETRY` s) and create the
    run's rooms again, so that participants who reconnect find them. Each outage is noted in
    ``run.external``: the report lists it as an external fault (when, for how long)."""
    from ..signaling.janus import JanusError, JanusSession

    lost_at: float | None = None
    while True:
        try:
            janus = await JanusSession.connect(target.url, timeout=5)
        except Exception:  # Janus is still away: try again
            await asyncio.sleep(JANUS_RETRY)  # a polling period: nothing tells when Janus is back
            continue
        try:
            if lost_at is not None:
                handle = await janus.attach()
                for room in target.created_rooms:
                    try:
                        await create_room(handle, room, scenario)
                    except JanusError as exc:
                        if exc.code != 427:  # 427: it exists already
                            run.errors.append(f"Janus refused to create room {room} again: {exc}")
                await handle.detach()
                back = time.time()
                run.external.append(("janus-restart", lost_at - run.started_wall, back - lost_at))
                lost_at = None
            await janus.lost()
            lost_at = time.time()
        except Exception as exc:  # the session broke while creating: start over
            logger.info("room keeper: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                await janus.close()


async def destroy_janus_rooms(target: Target) -> None:
    from ..signaling.janus import JanusSession

    if not target.created_rooms:
        return
    with contextlib.suppress(Exception):
        janus = await JanusSession.connect(target.url)
        try:
            handle = await janus.attach()
            for room in target.created_rooms:
                with contextlib.suppress(Exception):
                    await handle.message({"request": "destroy", "room": room, "permanent": False})
            await handle.detach()
        finally:
            await janus.close()


def room_names(scenario: Scenario, target_kind: str, run_id: str | None = None) -> list[str]:
    """The run's room names: given ids, else derived from ``run_id`` (every shard derives the
    same), else random. Janus rooms are numbers; WHIP/WHEP rooms are names."""
    if scenario.room_ids:
        return list(scenario.room_ids)
    if target_kind == "janus":
        if run_id is not None:
            digest = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")
            base = (digest % 9_000_000 + 1_000_000) * 100_000
        else:
            base = 700_000_000 + secrets.randbelow(100_000_000)
        return [str(base + i) for i in range(scenario.rooms)]
    run = run_id if run_id is not None else f"load-{secrets.token_hex(3)}"
    return [f"{run}-{i + 1}" for i in range(scenario.rooms)]


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a
    Kubernetes pod's limit) — ``os.cpu_count()`` would count the whole node."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()[:2]
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def worker_count(requested: str) -> int:
    if requested == "auto":
        return available_cpus()
    if not requested.isdigit() or int(requested) < 1:
        raise LoadError(f"--workers must be 'auto' or a number >= 1, got {requested!r}")
    return int(requested)


@dataclass
class LoadRun:
    """Collected state of a run (also what the live view reads)."""

    scenario: Scenario
    planned: list[Participant]
    names: list[str]
    snapshots: list[WorkerSnapshot] = field(default_factory=list)
    finals: dict[int, WorkerFinal] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    live: LiveTotals = field(default_factory=LiveTotals)
    interrupted: bool = False
    started_wall: float = 0.0
    external: list[tuple[str, float, float]] = field(default_factory=list)
    """Faults nobody planned, as the runner saw them: (what, seconds after the start, seconds out)."""

    def take(self, message: WorkerMessage) -> None:
        if isinstance(message, WorkerSnapshot):
            self.snapshots.append(message)
            self.live.add(message)
        elif isinstance(message, WorkerFinal):
            self.finals[int(message.worker)] = message
            self.errors += message.errors
        else:
            self.errors.append(f"worker {message.worker} crashed: {message.error}")


async def run_load(
    scenario: Scenario,
    *,
    target_kind: str,
    url: str,
    workers: str,
    secret: str | EpochKey | None,
    cache_dir: str | None,
    on_tick: Callable[[LoadRun, float], None],
    shard: tuple[int, int] = (0, 1),
    run_id: str | None = None,
    start_at: float | None = None,
    metrics_listen: tuple[str, int] | None = None,
    token: str | None = None,
    faults: Sequence[Fault] = (),
) -> tuple[LoadRun, LoadReport, Target]:
    """Run the scenario (or shard ``shard[0]`` of ``shard[1]`` of it); return the collected
    state, the (assertion-less) report and the target. ``secret``: the room secret, or an epoch
    file's key (keying v2: every participant starts at its epoch). ``scenario.media``'s clips
    are made in ``cache_dir`` before this (``sealrtc load`` does, progress shown): the workers
    find them there (one missing is made by each worker that needs it)."""
    names = room_names(scenario, target_kind, run_id)
    index, shards = shard
    participants = plan(scenario)
    churn = churn_plan(scenario, participants)  # the whole run's: every join moves its room's epoch
    steps = []
    if scenario.keying == 2:
        joins = ((c.at, c.joiner.room) for c in churn)
        first = secret.epoch if isinstance(secret, EpochKey) else 0
        steps = epoch_schedule(scenario.rooms, scenario.duration, scenario.ratchet_every, joins, start=first)
    # links from the whole plan: every shard gives a participant the same link
    links = assign_links(participants, scenario.impair, up=scenario.impair_up, down=scenario.impair_down,
                         seed=scenario.impair_seed)  # fmt: skip
    if shards > 1:
        from .plan import shard as shard_of

        participants = shard_of(participants, index, shards)
    count = min(worker_count(workers), max(1, len(participants)))
    exporter = None
    if metrics_listen is not None:
        from .exporter import LoadMetrics, serve

        exporter = LoadMetrics(str(index))
        try:
            serve(exporter, metrics_listen)  # serves until the process ends: a last scrape sees the end
        except OSError as exc:
            where = f"{metrics_listen[0]}:{metrics_listen[1]}"
            raise LoadError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None
    if target_kind == "relay":
        target = await start_relay(scenario.duration + FINAL_GRACE + 30)
    elif target_kind == "janus":
        target = await janus_rooms(url, names, scenario, bool(scenario.room_ids))
        if shards > 1:
            target.created_rooms = []  # other shards may still use them: a sharded run leaves its rooms
    else:
        target = Target("whip", url.rstrip("/"), token=token)
    run = LoadRun(scenario, participants, names)
    ctx = multiprocessing.get_context("spawn")
    messages: Any = ctx.Queue()
    stop = ctx.Event()
    earliest = time.time() + START_DELAY
    start_at = max(start_at, earliest) if start_at is not None else earliest
    run.started_wall = start_at
    processes = []
    for worker_index, part in enumerate(assign(participants, count)):
        rooms = {p.room for p in part}
        config = WorkerConfig(
            worker=worker_index,
            participants=part,
            room_names=names,
            target=target.for_workers(),
            start_at=start_at,
            duration=scenario.duration,
            e2ee=scenario.e2ee,
            suite=scenario.suite,
            probe=scenario.probe,
            media=scenario.media,
            video_codec=scenario.video_codec,
            cache_dir=cache_dir,
            keying=scenario.keying,
            rotate_every=scenario.rotate_every,
            ratchet_every=scenario.ratchet_every,
            churn=churn_for(churn, part),
            epoch_steps=[s for s in steps if s.room in rooms],  # its rooms' (its joiners stay in them)
            room_shapes=tuple(scenario.room_shape_list()),
            recover_within=scenario.recover_within,
            faults=tuple(faults),
            links={p.index: links[p.index] for p in part if p.index in links},
            profiles=bool(links),
        )
        process = ctx.Process(target=worker_main, args=(config, secret, messages, stop), daemon=True)
        process.start()
        processes.append(process)
    loop = asyncio.get_running_loop()

    deadline = [start_at + scenario.duration + FINAL_GRACE]

    def interrupt() -> None:
        run.interrupted = True
        stop.set()
        deadline[0] = min(deadline[0], time.time() + FINAL_GRACE)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, interrupt)
    next_tick = time.monotonic() + 1.0
    injecting = asyncio.ensure_future(inject_faults(target, faults, start_at, run)) if faults else None
    keeper = asyncio.ensure_future(keep_janus_rooms(target, scenario, run)) if target.created_rooms else None
    try:
        while len(run.finals) < len(processes) and time.time() < deadline[0]:
            try:
                message = await asyncio.to_thread(messages.get, True, 0.2)
            except queue_module.Empty:
                message = None
            pending = [message] if message is not None else []
            while True:  # drain what else is there without waiting
                try:
                    pending.append(messages.get_nowait())
                except queue_module.Empty:
                    break
            for item in map(read_message, pending):
                run.take(item)
                if exporter is not None and isinstance(item, WorkerSnapshot):
                    exporter.take(item)
                elif exporter is not None and isinstance(item, WorkerFinal):
                    exporter.take_final(item)
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                on_tick(run, max(0.0, time.time() - start_at))
            if not any(p.is_alive() for p in processes) and messages.empty():
                break
    finally:
        stop.set()
        for task in (injecting, keeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        for process in processes:
            await asyncio.to_thread(process.join, 5)
            if process.is_alive():
                process.kill()
        missing = [i for i in range(len(processes)) if i not in run.finals]
        for worker_index in missing:
            run.errors.append(f"worker {worker_index} sent no final report (its participants count as failed)")
        if target.process is not None and target.process.returncode is None:
            target.process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(target.process.wait(), 10)
        if target.kind == "janus":
            await destroy_janus_rooms(target)
    duration = max(0.0, min(time.time(), start_at + scenario.duration) - start_at)
    info = ScenarioInfo.from_json(
        scenario.as_dict()
        | {"target": target.describe(), "workers": len(processes), "shard": {"index": index, "count": shards}}
        | {"run_id": run_id}
        | ({"faults": [f.spec for f in faults]} if faults else {})
    )
    assert info is not None
    started = datetime.fromtimestamp(start_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    profiles = run_profiles(links, scenario.impair, profile_name(scenario.impair_up, scenario.impair_down))
    report = shard_report(
        run, info, index, started_at=started, duration_s=duration, faults=faults, profiles=profiles if links else None
    )
    return run, report, target


def external_faults(seen: Sequence[tuple[str, float, float]]) -> tuple[FaultReport, ...]:
    """Faults the runner saw but did not cause (Janus went away and came back): when and for how
    long. Who lost media and how fast they recovered are in the recovery metrics (reconnects,
    ``time_to_recover_ms``, ``availability_percent``): workers watch planned faults only."""
    return tuple(FaultReport(spec=what, kind="external", at_s=round(at, 3), length_s=round(length, 3))
                 for what, at, length in seen)  # fmt: skip


def planned_per_room(participants: list[Participant], names: list[str]) -> dict[str, int]:
    """Legitimate participants each room planned (whether their worker reports or not)."""
    planned: dict[str, int] = {}
    for p in participants:
        planned[names[p.room]] = planned.get(names[p.room], 0) + p.legitimate
    return planned


def shard_report(
    run: LoadRun,
    scenario: ScenarioInfo,
    shard: int,
    *,
    started_at: str,
    duration_s: float,
    faults: Sequence[Fault] = (),
    profiles: Sequence[str] | None = None,
) -> LoadReport:
    """The run's report (without assertions), and in its ``raw`` section what ``sealrtc report
    merge`` needs to rebuild a merged report exactly: every worker's final and snapshots
    (per-room live data dropped), labelled ``SHARD.WORKER``, and the rooms' planned participants.
    ``profiles``: the run's link profiles (None: links were not impaired, no per-profile rows)."""
    planned = planned_per_room(run.planned, run.names)
    finals = [final for _, final in sorted(run.finals.items())]
    raw = RawData(
        shard,
        tuple(final.relabelled(f"{shard}.{final.worker}") for final in finals),
        tuple(relabel(snap, f"{shard}.{snap.worker}") for snap in run.snapshots),
        planned,
    )
    return build_report(
        scenario=scenario,
        room_names=run.names,
        finals=finals,
        snapshots=run.snapshots,
        planned_per_room=planned,
        started_at=started_at,
        duration_s=duration_s,
        errors=run.errors,
        raw=raw,
        faults=fault_reports(faults, finals) + external_faults(run.external),
        profiles=profile_reports(finals, profiles) if profiles is not None else (),
    )
