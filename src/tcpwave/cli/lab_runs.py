"""`tcpwave lab`'s runs: a page's query (scenario, seed, faults, knobs) checked word by word, and the
deterministic rerun it names, kept in a small cache so that stepping, reloading and exporting cost
one simulation.

Every query word is validated here: a bad one is a LabError whose message the page shows (HTTP
400), never a traceback. The work a query can ask for is bounded: scenarios whose ladder is too
long for a page (the 1 MB `lossy` run) are not offered, faults are few, delays and MSL are capped.
"""

import dataclasses
import io
import math
import threading
from collections import OrderedDict
from urllib.parse import parse_qsl, urlencode

from ..core import profiles
from ..core.config import Config
from ..core.trace import Tracer
from ..scenarios import SCENARIOS, configured
from ..scenarios.faults import SpecError, injected, shown_flags
from ..scenarios.faults import build as build_faults
from ..views.capture import PcapngWriter
from ..views.infer import ConnectionView
from ..views.record import CommentedCapture
from ..views.svg import ladder_steps
from .knobs import RANGES

MAX_ROWS = 1500  # ladder rows a page steps through (the lossy demo has ~6,000: use `tcpwave demo` for it)
MAX_FAULTS = 12
MAX_DELAY = 60.0  # seconds a segment may be held on the wire
MAX_WORD = 80  # characters in one query value
MAX_FIELDS = 40
TIME_WAIT_OFF_MSL = 0.001  # "TIME_WAIT off": 2 x 1 ms, as the no-time-wait what-if cuts it
PROFILES: dict[str, dict] = {name: profiles.settings(name) for name in profiles.NAMES}  # name -> Config changes
ACTIONS = ("drop", "delay", "dup")
SWITCHES: dict[str, tuple[str, dict]] = {  # query word -> (what it turns off, the Config change when off)
    "time_wait": ("TIME_WAIT", {"msl": TIME_WAIT_OFF_MSL}),
    "delayed_ack": ("delayed ACK", {"delayed_ack": 0.0}),
    "nagle": ("Nagle's algorithm", {"nodelay": True}),
    "timestamps": ("timestamps", {"timestamps": False}),
}
_LONE = {"SYN", "FIN", "RST"}
_ON, _OFF = {"on", "1", "true", "yes"}, {"off", "0", "false", "no"}


class LabError(ValueError):
    """A query the lab will not run: its message says why (HTTP 400)."""


@dataclasses.dataclass(frozen=True)
class Query:
    scenario: str = "handshake"
    seed: int = 1
    faults: tuple[tuple[str, str], ...] = ()  # (action, SPEC or SPEC=SECONDS), in order
    msl: float | None = None
    switches: tuple[tuple[str, bool], ...] = tuple((name, True) for name in SWITCHES)
    profile: str = ""

    def text(self) -> str:
        """The canonical query string: what the page's URL carries (defaults left out)."""
        words: list[tuple[str, str]] = [("scenario", self.scenario)]
        if self.seed != 1:
            words.append(("seed", str(self.seed)))
        words += list(self.faults)
        if self.msl is not None:
            words.append(("msl", repr(self.msl).removesuffix(".0")))  # (exact: the text is the cache's key)
        words += [(name, "off") for name, on in self.switches if not on]
        if self.profile:
            words.append(("profile", self.profile))
        return urlencode(words)

    def on(self, name: str) -> bool:
        return dict(self.switches)[name]

    def config(self) -> Config | None:
        changes: dict = dict(PROFILES.get(self.profile, {}))
        if self.msl is not None:
            changes["msl"] = self.msl
        for name, on in self.switches:
            if not on:
                changes.update(SWITCHES[name][1])
        return dataclasses.replace(Config(), **changes) if changes else None

    def state(self) -> dict:
        """The form's values, for the page."""
        return {"scenario": self.scenario, "seed": self.seed, "msl": self.msl, "profile": self.profile,
                "faults": [list(f) for f in self.faults], **dict(self.switches)}


def parse(text: str, offered) -> Query:
    """A query string -> Query; LabError says what is wrong with it. `offered`: the scenario names."""
    try:
        words = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    except ValueError as e:
        raise LabError(f"cannot read the query: {e}") from None
    single: dict[str, str] = {}
    faults: list[tuple[str, str]] = []
    for name, value in words:
        if len(value) > MAX_WORD:
            raise LabError(f"{name}: longer than {MAX_WORD} characters")
        if name in ACTIONS:
            faults.append((name, value.strip()))
        elif name in ("scenario", "seed", "msl", "profile", *SWITCHES):
            if name in single:
                raise LabError(f"{name} is given twice")
            single[name] = value.strip()
        else:
            raise LabError(f"unknown query word {name!r}; known: scenario, seed, {', '.join(ACTIONS)}, msl, "
                           f"{', '.join(SWITCHES)}, profile")
    scenario = single.get("scenario", "handshake")
    if scenario not in offered and scenario in SCENARIOS:
        raise LabError(f"{scenario}'s ladder is too long for the lab ({MAX_ROWS} rows at most): see it with "
                       f"`tcpwave demo {scenario} --html FILE`")
    if scenario not in offered:
        raise LabError(f"no scenario {scenario!r} in the lab; try: {', '.join(offered)}")
    if len(faults) > MAX_FAULTS:
        raise LabError(f"{len(faults)} faults: the lab takes at most {MAX_FAULTS}")
    for action, spec in faults:
        _check_fault(action, spec)
    profile = single.get("profile", "")
    if profile and profile not in PROFILES:
        raise LabError(f"no profile {profile!r}" + (f"; known: {', '.join(PROFILES)}" if PROFILES
                                                      else ": there are no profiles yet"))
    switches = tuple((name, _switch(name, single.get(name, "on"))) for name in SWITCHES)
    return Query(scenario, _seed(single.get("seed", "1")), tuple(faults), _msl(single.get("msl")), switches, profile)


def _seed(text: str) -> int:
    if not text.isdigit() or int(text) >= 1 << 32:
        raise LabError(f"seed {text!r}: a whole number from 0 to {(1 << 32) - 1}")
    return int(text)


def _msl(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    low, high = RANGES["msl"]
    try:
        msl = float(text)
    except ValueError:
        msl = math.nan
    if not low <= msl <= high:  # (NaN too)
        raise LabError(f"msl {text!r}: seconds from {low:g} to {high:g}")
    return msl


def _switch(name: str, text: str) -> bool:
    if text.lower() in _ON:
        return True
    if text.lower() in _OFF:
        return False
    raise LabError(f"{name}={text!r}: on or off")


def _check_fault(action: str, spec: str) -> None:
    if action == "delay":
        _, _, seconds = spec.rpartition("=")
        try:
            delay = float(seconds)
        except ValueError:
            delay = math.nan
        if not 0 < delay <= MAX_DELAY:
            raise LabError(f"delay {spec!r}: write SPEC=SECONDS with 0 < SECONDS <= {MAX_DELAY:g}")


@dataclasses.dataclass
class Run:
    """One rerun: its connections (a what-if may draw an earlier run first), with their titles and the
    name of the segment on each ladder row; what the faults named; the checks; the capture."""

    query: Query
    views: list[ConnectionView]
    titles: list[str]
    names: list[list[str | None]]  # per view, per ladder row: HOST:FLAGS#N of a segment, else None
    said: list[str]
    checks: dict[str, bool]
    closed: dict[str, str]
    end: float
    msl: float
    pcapng: bytes


def segment_names(events: list[dict], left: str = "client", right: str = "server") -> list[str | None]:
    """Each ladder row's segment as --drop names it (HOST:FLAGS#N, counted in this run), or None. A
    lone SYN, FIN or RST names the Nth segment carrying it (faults.parse's rule), so it is counted so."""
    exact: dict[tuple[str, str], int] = {}
    carrying: dict[tuple[str, str], int] = {}
    out: list[str | None] = []
    for row in ladder_steps(events, left, right):
        if row["kind"] != "seg":
            out.append(None)
            continue
        e = events[row["event"]]
        host, flags = e["host"], shown_flags(e["flags"])
        exact[(host, flags)] = exact.get((host, flags), 0) + 1
        for lone in _LONE.intersection(flags.split(",")):
            carrying[(host, lone)] = carrying.get((host, lone), 0) + 1
        n = carrying[(host, flags)] if flags in _LONE else exact[(host, flags)]
        out.append(f"{host}:{flags}#{n}" if flags else None)
    return out


def simulate(q: Query) -> Run:
    sc = SCENARIOS[q.scenario]
    config = q.config()
    try:
        with configured(config):
            faults, said = build_faults(list(q.faults), lambda: sc.run(q.seed, None, []).events)
    except SpecError as e:
        raise LabError(str(e)) from None
    tracer, buf = Tracer(), io.BytesIO()
    capture = CommentedCapture(PcapngWriter(buf), tracer)
    with configured(config), injected(faults):
        result = sc.run(q.seed, tracer, [capture])
    capture.flush()
    runs = [*result.before, (result.title or sc.summary, result.events, result.end_time)]
    views = [ConnectionView("client", "server", events, events[0]["t"] if events else 0.0, end)
             for _, events, end in runs]
    names = [segment_names(v.events) for v in views]
    if sum(map(len, names)) > MAX_ROWS:
        raise LabError(f"{q.scenario} draws {sum(map(len, names))} ladder rows, more than a page steps through "
                       f"({MAX_ROWS}): see it with `tcpwave demo {q.scenario} --html FILE`")
    return Run(q, views, [title for title, _, _ in runs], names, said, dict(result.checks), dict(result.closed),
               result.end_time, (config or Config()).msl, buf.getvalue())


class Runs:
    """The scenarios the lab offers and the runs it has made: one simulation at a time (each takes
    milliseconds), the latest CACHED runs kept."""

    CACHED = 24

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Run] = OrderedDict()
        self.offered = [name for name, sc in SCENARIOS.items()
                        if len(segment_names(sc.run(1, None, []).events)) <= MAX_ROWS]

    def get(self, text: str) -> Run:
        q = parse(text, self.offered)
        key = q.text()
        with self._lock:
            run = self._cache.get(key)
            if run is None:
                run = self._cache[key] = simulate(q)
                while len(self._cache) > self.CACHED:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return run

    def locked(self):
        """Held while a view of a run is drawn (matplotlib, for the HTML export's plots, is not thread-safe)."""
        return self._lock
