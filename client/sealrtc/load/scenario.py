"""A load scenario: from command-line flags or a small TOML/YAML file (flags win over the file)."""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SealError
from ..impairment import ImpairmentError
from .shares import ImpairShare, parse_shares

if TYPE_CHECKING:
    from ..media import MediaShape


class ScenarioError(SealError):
    """The scenario is invalid (one line, says which setting and why)."""


@dataclass(frozen=True)
class RoomShape:
    """``[[room]]`` in a scenario file: what the publishers of the next ``count`` rooms send,
    where it differs from the scenario's own settings (``None``: as the scenario says)."""

    count: int = 1
    video_bitrate: int | None = None
    resolution: str | None = None
    fps: int | None = None
    audio: bool | None = None
    video: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


_ROOM_KEYS = {"count", "video_bitrate", "resolution", "fps", "no_audio", "no_video"}


@dataclass(frozen=True)
class Scenario:
    rooms: int = 1
    publishers: int = 1
    """Per room."""
    subscribers: int = 2
    """Per room (legitimate: they hold the secret)."""
    intruders: int = 0
    """Per room: subscribers holding a different secret; they must decrypt nothing."""
    duration: float = 30.0
    ramp: float = 10.0
    """Joins per second (all participants, in plan order)."""
    decode_every: int = 0
    """One legitimate subscriber in N decodes (0: none, all verify only)."""
    e2ee: bool = True
    suite: int = 6
    probe: bool = True
    media: str | None = None
    video_codec: str = "vp8"
    """What publishers send: ``vp8`` or ``h264`` (file key ``video-codec``)."""
    rotate_every: float = 0.0
    """Keying v1: the room's secret changes every S seconds (0: never); see :mod:`sealrtc.load.keying`."""
    keying: int = 1
    """1: a secret per room (v1); 2: key epochs ratcheted from it (v2), joiners get epoch files."""
    ratchet_every: float = 0.0
    """Keying v2: every S seconds the room's epoch advances (0: never)."""
    churn: float = 0.0
    """Subscribers per second who leave and are replaced by new joiners (0: none)."""
    recover_within: float = 30.0
    """Participants who lose their server reconnect for up to this many seconds, then fail."""
    impair_up: str | None = None
    """Every participant's uplink impairment (``--impair-up``/``--impair``), shares aside."""
    impair_down: str | None = None
    """Every participant's downlink impairment (``--impair-down``/``--impair``), shares aside."""
    impair_seed: int = 0
    """Seed of every impaired link (each participant's own seed derives from it)."""
    impair: tuple[ImpairShare, ...] = field(default_factory=tuple)
    """Shares of participants with their own link: ``impair = [{share = 0.25, down = "3g"}]``."""
    room_ids: tuple[str, ...] = field(default_factory=tuple)
    """Existing rooms to use (Janus: numeric ids); empty: the tool names (and creates) its own."""
    video_bitrate: int = 0
    """Publishers' video bitrate in kbit/s (0: the source's own; file key ``video-bitrate``)."""
    resolution: str | None = None
    """Publishers' video size ``WxH`` (None: the source's own)."""
    fps: int = 0
    """Publishers' video frame rate (0: the source's own)."""
    audio: bool = True
    """Publishers send audio (file key ``no-audio = true`` turns it off)."""
    video: bool = True
    """Publishers send video (file key ``no-video = true`` turns it off)."""
    room_shapes: tuple[RoomShape, ...] = field(default_factory=tuple)
    """``[[room]]`` tables: per-room overrides of the five settings above, in room order."""
    assertions: tuple[str, ...] = field(default_factory=tuple)
    """Pass criteria (``assert = [...]`` in a file); ``--assert`` flags add to them."""

    @property
    def per_room(self) -> int:
        return self.publishers + self.subscribers + self.intruders

    @property
    def planned(self) -> int:
        """Legitimate participants (publishers + subscribers) over all rooms."""
        return self.rooms * (self.publishers + self.subscribers)

    def validate(self) -> Scenario:
        checks: list[tuple[bool, str]] = [
            (self.rooms >= 1, "rooms must be >= 1"),
            (self.publishers >= 1, "publishers must be >= 1 per room"),
            (self.subscribers >= 0, "subscribers must be >= 0"),
            (self.intruders >= 0, "intruders must be >= 0"),
            (math.isfinite(self.duration) and self.duration > 0, "duration must be a positive number of seconds"),
            (math.isfinite(self.ramp) and self.ramp > 0, "ramp must be a positive number of joins per second"),
            (self.decode_every >= 0, "decode_every must be >= 0 (0: nobody decodes)"),
            (1 <= self.suite <= 8, "suite must be 1..8"),
            (self.video_codec in ("vp8", "h264"), f"video-codec must be vp8 or h264, not {self.video_codec!r}"),
            (not self.room_ids or len(self.room_ids) == self.rooms, "give as many room ids as --rooms"),
            (self.e2ee or self.intruders == 0, "intruders need E2EE (without it everybody can read the media)"),
            (self.keying in (1, 2), "keying must be 1 or 2"),
            (_off_or_positive(self.rotate_every), "rotate-every must be a positive number of seconds"),
            (_off_or_positive(self.ratchet_every), "ratchet-every must be a positive number of seconds"),
            (_off_or_positive(self.churn), "churn must be a positive number of subscribers per second"),
            (
                not self.rotate_every or self.keying == 1,
                "rotate-every changes keying v1's secret: use ratchet-every with keying 2",
            ),
            (not self.ratchet_every or self.keying == 2, "ratchet-every needs keying 2 (key epochs)"),
            (self.e2ee or (self.keying == 1 and not self.rotate_every), "key changes need E2EE"),
            (not self.churn or self.subscribers > 0, "churn needs subscribers"),
            (self.recover_within > 0 and math.isfinite(self.recover_within), "recover-within must be positive seconds"),
        ]
        for ok, message in checks:
            if not ok:
                raise ScenarioError(message)
        covered = sum(r.count for r in self.room_shapes)
        if covered > self.rooms:
            raise ScenarioError(f"[[room]] tables cover {covered} rooms, the scenario has {self.rooms}")
        self.room_shape_list()  # every room's shape is checked now, not when its publisher joins
        if self.rooms * self.per_room > 100_000:
            raise ScenarioError("more than 100000 participants: split the run into shards")
        return self

    def shape_of(self, room: int) -> MediaShape:
        """What the publishers of room ``room`` (0-based) send: its ``[[room]]`` table over the
        scenario's settings. :class:`ScenarioError` if that is not a valid shape."""
        from ..media import MediaShape, ShapeError

        bitrate, resolution, fps = self.video_bitrate, self.resolution, self.fps
        audio, video = self.audio, self.video
        first = 0
        where = ""
        for index, table in enumerate(self.room_shapes):
            if first <= room < first + table.count:
                where = f"[[room]] {index + 1}: "
                bitrate = table.video_bitrate if table.video_bitrate is not None else bitrate
                resolution = table.resolution if table.resolution is not None else resolution
                fps = table.fps if table.fps is not None else fps
                audio = table.audio if table.audio is not None else audio
                video = table.video if table.video is not None else video
                break
            first += table.count
        try:
            return MediaShape.of(resolution=resolution, fps=fps, video_kbps=bitrate, audio=audio, video=video)
        except ShapeError as exc:
            raise ScenarioError(f"{where}{exc}") from None

    def room_shape_list(self) -> list[MediaShape]:
        """:meth:`shape_of` every room, in room order."""
        return [self.shape_of(room) for room in range(self.rooms)]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["room_shapes"] = [r.as_dict() for r in self.room_shapes]
        out["room_ids"] = list(self.room_ids)
        out["assertions"] = list(self.assertions)
        out["media"] = self.media or "synthetic"
        return out


MAX_FILE = 1024 * 1024
"""Largest scenario file read (bytes)."""

_TYPES = {f.name: f.type for f in fields(Scenario)}
_FILE_NAMES = (set(_TYPES) - {"assertions", "room_shapes", "audio", "video"}) | {
    "assert",
    "no_e2ee",
    "room",
    "no_audio",
    "no_video",
}
"""Setting names a scenario file may use (dashes read as underscores)."""


def _off_or_positive(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a scenario file (``.toml``, ``.yaml``/``.yml``) into settings; errors are one line."""
    p = Path(path)
    try:
        with p.open("rb") as file:
            raw = file.read(MAX_FILE + 1)  # never more: a scenario is a few lines
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"scenario {path} is not UTF-8 text") from None
    if len(raw) > MAX_FILE:
        raise ScenarioError(f"scenario {path} is over {MAX_FILE // 1024} KiB: a scenario is a few settings")
    data: Any
    if p.suffix.lower() in (".yaml", ".yml"):
        data = _yaml(text, path)
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"scenario {path} is not valid TOML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("scenario"), dict):
        data = data["scenario"]
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {path} must be a table of settings (rooms = 2, subscribers = 10, ...)")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = _setting_name(key, _FILE_NAMES, f"scenario {path}", shown=_FILE_NAMES - {"no_e2ee"})
        if name == "no_e2ee":
            if not isinstance(value, bool):
                raise ScenarioError(f"scenario {path}: setting {key!r} must be true or false, got {value!r}")
            name, value = "e2ee", not value
        elif name in ("no_audio", "no_video"):
            if not isinstance(value, bool):
                raise ScenarioError(f"scenario {path}: setting {key!r} must be true or false, got {value!r}")
            name, value = name[3:], not value
        elif name == "assert":
            name = "assertions"
        elif name == "room":
            name = "room_shapes"
        try:
            settings[name] = _coerce(name, value)
        except ScenarioError as exc:
            raise ScenarioError(f"scenario {path}: {exc}") from None
    if settings.get("media"):
        settings["media"] = _beside(p, settings["media"])
    return settings


def _beside(scenario: Path, media: str) -> str:
    """A relative ``media`` path in a scenario file names a file next to the scenario, wherever
    the run is started from (``--media`` on the command line stays relative to the working
    directory)."""
    path = Path(media).expanduser()
    return str(path if path.is_absolute() else scenario.parent / path)


def _yaml(text: str, path: str | Path) -> Any:
    """Safe YAML without aliases: ``*name`` is refused where it is met, so a "billion laughs"
    file (aliases of aliases, expanding to gigabytes) is refused before anything expands."""
    try:
        import yaml
    except ImportError:
        raise ScenarioError("YAML scenarios need PyYAML (pip install pyyaml); TOML works as is") from None

    class NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                line = self.peek_event().start_mark.line + 1
                raise ScenarioError(f"scenario {path}: line {line}: YAML aliases (*name) are not allowed in a "
                                    "scenario: write the value out")  # fmt: skip
            return super().compose_node(parent, index)

    loader = NoAliasLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path} is not valid YAML: {_yaml_problem(exc)}") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: Exception) -> str:
    """``expected ',' or ']', but got ':' (at line 3, column 12)``, where TOML's errors say it too:
    PyYAML's own text spreads the problem and its context over several lines."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem or mark is None:
        return str(exc).splitlines()[0]
    return f"{problem} (at line {mark.line + 1}, column {mark.column + 1})"


def build(file_settings: dict[str, Any], flag_settings: dict[str, Any]) -> Scenario:
    """The scenario from a file's settings overridden by the flags that were given."""
    merged = {**file_settings, **{k: v for k, v in flag_settings.items() if v is not None}}
    scenario = Scenario()
    for name, value in merged.items():
        scenario = replace(scenario, **{name: _coerce(name, value)})
    return scenario.validate()


def _assertions(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ScenarioError('setting assert must list at least one expression, e.g. ["p95(latency_video_ms) < 300"] '
                            "(leave it out for the default assertions)")  # fmt: skip
    for i, item in enumerate(items, 1):
        if not isinstance(item, str) or not item.strip():
            raise ScenarioError(f'setting assert: item {i} ({item!r}) is not an expression: quote each one, e.g. '
                                '"joined == planned"')  # fmt: skip
    return tuple(items)


def _setting_name(key: object, known: Collection[str], where: str, *, shown: Collection[str] | None = None) -> str:
    """A setting's name as the code spells it (``decode-every`` -> ``decode_every``); an unknown
    one is refused with a did-you-mean and the names ``shown`` (default: all known)."""
    name = str(key).replace("-", "_")
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        listed = ", ".join(sorted(known if shown is None else shown))
        raise ScenarioError(f"{where}: unknown setting {key!r} ({hint}known: {listed})")
    return name


def _room_shapes(value: Any) -> tuple[RoomShape, ...]:
    """``[[room]]`` tables (TOML) or a list of mappings (YAML ``room:``); already-made
    :class:`RoomShape` values pass."""
    items = [value] if isinstance(value, (dict, RoomShape)) else value
    if not isinstance(items, (list, tuple)):
        raise ScenarioError(
            "setting room must be a list of tables ([[room]] in TOML), e.g. [[room]] video-bitrate = 300"
        )
    shapes: list[RoomShape] = []
    for i, item in enumerate(items, 1):
        if isinstance(item, RoomShape):
            shapes.append(item)
            continue
        if not isinstance(item, dict):
            raise ScenarioError(f"[[room]] {i} must be a table of settings, got {item!r}")
        settings: dict[str, Any] = {}
        for key, raw in item.items():
            name = _setting_name(key, _ROOM_KEYS, f"[[room]] {i}")
            if name in ("no_audio", "no_video"):
                if not isinstance(raw, bool):
                    raise ScenarioError(f"[[room]] {i}: setting {key!r} must be true or false, got {raw!r}")
                settings[name[3:]] = not raw
            elif name == "resolution":
                if not isinstance(raw, str):
                    raise ScenarioError(f'[[room]] {i}: resolution must be a string WxH, e.g. "640x360"')
                settings[name] = raw
            else:
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise ScenarioError(f"[[room]] {i}: setting {key!r} must be a whole number, got {raw!r}")
                settings[name] = raw
        shape = RoomShape(**settings)
        if shape.count < 1:
            raise ScenarioError(f"[[room]] {i}: count must be >= 1")
        shapes.append(shape)
    return tuple(shapes)


def _impairments(name: str, value: Any) -> Any:
    """The shares (``impair``) or one direction's spec, checked by the impairment model."""
    from ..impairment import parse_impairment

    try:
        if name == "impair":
            return parse_shares(value)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ImpairmentError('expected an impairment, e.g. "3g" or "loss=5%,delay=100ms"')
        parse_impairment(value)
        return value.strip()
    except ImpairmentError as exc:
        raise ScenarioError(f"setting {name.replace('_', '-')}: {exc}") from None


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    if name == "assertions":
        return _assertions(value)
    if name == "room_shapes":
        return _room_shapes(value)
    if name in ("impair", "impair_up", "impair_down"):
        return _impairments(name, value)
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if name == "room_ids":
            if isinstance(value, (str, int)):
                value = [value]
            return tuple(str(v) for v in value)
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"setting {name} has a bad value {value!r} (expected {kind})") from None
