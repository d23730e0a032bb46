"""`tcpwave sweep`: the simulator's bulk transfer over a grid of points, each an independent task.

A point is one value per axis (cc, loss %, RTT ms, rate Mbit/s, queue in BDPs, seed, and any Config
knob given several values); its row is the point plus what `bench.sim.run_one` measured. A point's
row depends only on the point (every run is seeded and in virtual time), so the rows are the same
whichever process, worker or order ran them. Points run serially, on a local process pool, or on a
Dask distributed cluster; rows go to CSV or JSON as they finish, and a rerun skips the points the
file already has.
"""

import csv
import itertools
import json
import multiprocessing
import os
import pathlib
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .sim import run_one

FIXED_AXES = ("cc", "loss", "rtt_ms", "rate_mbit", "queue_bdp", "seed")
KNOB_PREFIX = "set:"  # a knob axis's column: set:rto_min
RESULTS = ("goodput_bps", "share", "retransmitted_bytes", "timeouts", "fast_retransmits", "mathis_bps", "verified")
FORMATS = (".csv", ".json")


class SweepError(ValueError):
    """A grid or output file that cannot run: said in one line."""


@dataclass(frozen=True)
class Grid:
    axes: dict[str, list]  # column -> values, in the order the grid varies them (the last fastest)
    seconds: float  # virtual seconds per run

    @property
    def columns(self) -> list[str]:
        return [*self.axes, "seconds", *RESULTS]

    def points(self) -> list[dict]:
        names = list(self.axes)
        return [{**dict(zip(names, values, strict=True)), "seconds": self.seconds}
                for values in itertools.product(*self.axes.values())]

    def key(self, row: dict) -> tuple[str, ...]:
        """What identifies a point in a row, the same read back from CSV (strings) or JSON."""
        return tuple(str(row.get(name)) for name in [*self.axes, "seconds"])


def run_point(point: dict) -> dict:
    """One point's row: a deterministic function of the point alone (the task every worker runs)."""
    settings = {name[len(KNOB_PREFIX):]: v for name, v in point.items() if name.startswith(KNOB_PREFIX)}
    sack = settings.pop("sack", True)
    row = run_one(point["loss"] / 100, sack, rate_bps=point["rate_mbit"] * 1e6, rtt=point["rtt_ms"] / 1000,
                  seconds=point["seconds"], seed=point["seed"], cc=point["cc"], settings=settings,
                  queue_bdp=point["queue_bdp"])
    return {**point, **{name: getattr(row, name) for name in RESULTS}}


# -- where the points run --------------------------------------------------------------------------

def _worker_signals() -> None:  # pool workers: Ctrl-C is the parent's to handle, by ending them
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (forked with the parent's handler) how terminate() ends them


def run_serial(points: list[dict]) -> Iterator[dict]:
    for point in points:
        yield run_point(point)


def run_pool(points: list[dict], jobs: int) -> Iterator[dict]:
    """On `jobs` local processes; leaving early (Ctrl-C, an error) terminates them all."""
    pool = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn").Pool(
        jobs, initializer=_worker_signals)
    try:
        yield from pool.imap_unordered(run_point, points, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_dask(points: list[dict], scheduler: str) -> Iterator[dict]:
    """On the Dask distributed cluster at `scheduler`; leaving early cancels what has not run."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SweepError("--scheduler needs dask distributed: pip install 'tcpwave[sweep]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as e:
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    futures = client.map(run_point, points, pure=False)
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
        client.close()


# -- the output file -------------------------------------------------------------------------------

def check_output(path: pathlib.Path) -> None:
    if path.suffix not in FORMATS:
        raise SweepError(f"{path}: the output is .csv or .json")


def load(path: pathlib.Path) -> list[dict]:
    """The rows already in the output (none when there is no file)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            rows = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as e:
            raise SweepError(f"{path}: not a sweep's JSON ({e})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SweepError(f"{path}: not a sweep's JSON (a list of rows)")
        return rows
    return list(csv.DictReader(text.splitlines()))


class Output:
    """The results file, written as rows finish (CSV appended, JSON replaced whole) so that an
    interrupted sweep keeps what it ran."""

    def __init__(self, path: pathlib.Path, grid: Grid, existing: list[dict]):
        self.path, self.grid, self.rows = path, grid, list(existing)
        if existing and path.suffix == ".csv" and list(existing[0]) != grid.columns:
            raise SweepError(f"{path}: its columns ({', '.join(existing[0])}) are not this sweep's "
                             f"({', '.join(grid.columns)}); use another output file")

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self.path.suffix == ".json":
            self._replace(self.rows)
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.grid.columns)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def finish(self) -> None:
        """Rewrite in grid order (rows of other grids first, as they were), whatever order they ran in."""
        order = {self.grid.key(p): i for i, p in enumerate(self.grid.points())}
        self._replace(sorted(self.rows, key=lambda r: order.get(self.grid.key(r), -1)))

    def _replace(self, rows: list[dict]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            if self.path.suffix == ".json":
                json.dump(rows, f, indent=1)
            else:
                writer = csv.DictWriter(f, self.grid.columns)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, self.path)


# -- progress --------------------------------------------------------------------------------------

class Progress:
    """A bar on a terminal; elsewhere a count line about every tenth of the way."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.total, self.done, self.step, self.start = stream, 0, 0, 1, time.monotonic()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def begin(self, total: int) -> None:
        self.total, self.step = total, max(1, total // 10)

    def advance(self) -> None:
        self.done += 1
        if self.tty:
            filled = 30 * self.done // max(1, self.total)
            self.stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {self.done}/{self.total} points "
                              f"{time.monotonic() - self.start:.0f} s")
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done % self.step == 0 or self.done == self.total:
            self.stream.write(f"tcpwave sweep: {self.done}/{self.total} points\n")
        self.stream.flush()

    def interrupted(self) -> None:
        if self.tty and 0 < self.done < self.total:
            self.stream.write("\n")


def sweep(grid: Grid, output: pathlib.Path, runner: Callable[[list[dict]], Iterable[dict]],
          progress: Progress | None = None) -> tuple[int, int]:
    """Run the grid's points not already in `output`; (points run, points skipped)."""
    check_output(output)
    existing = load(output)
    out = Output(output, grid, existing)
    done = {grid.key(r) for r in existing}
    todo = [p for p in grid.points() if grid.key(p) not in done]
    ran = 0
    if progress:
        progress.begin(len(todo))
    for row in runner(todo):
        out.add(row)
        ran += 1
        if progress:
            progress.advance()
    out.finish()
    return ran, len(grid.points()) - len(todo)
