"""What `tcpwave watch` adds to the live ladder: `--census`, a line a second with how many
endpoints are in each state instead of the ladder (views/census.py), from the states inferred from
every packet so far; and `--explain`, each connection explained once the command has ended."""

import sys
import time

from .census import census_line, counts_at
from .files import ladder_width
from .ladder import render_ladder
from .live import SETTLE, Live


def explained(views, msl: float) -> str:
    """Each connection's ladder with `--explain`'s reasons and notes: written once the connections
    are complete, so that every note is computed from all of a connection's segments."""
    return "".join(f"\n# connection {n}: {v.title}: explained\n"
                   + render_ladder(v.events, v.left, v.right, explain=True, msl=msl, width=ladder_width(None)) + "\n"
                   for n, v in enumerate(views, 1))


class CensusLive(Live):
    """Prints the census at the end of each second since the first packet, once that second is
    SETTLE old (a receiver's state change waits for its ACK), and at the end."""

    def __init__(self, msl: float = 30.0, out=sys.stdout, clock=time.time) -> None:
        super().__init__(out)
        self.msl = msl
        self.clock = clock
        self.shown = 0  # whole seconds printed
        self.headed = False

    def redraw(self, final: bool = False) -> bool:
        """Returns True: the next second is always still to come (the caller keeps calling)."""
        if self.t0 is None:
            return True
        if not self.shown and not self.headed:
            self.headed = True
            print(f"state census: endpoints in each state at the end of each second since the first packet "
                  f"(TIME_WAIT for 2×MSL, MSL {self.msl:g} s)", file=self.out)
        now = self.clock() - self.t0
        due = int(now - SETTLE) if not final else int(now)
        if due > self.shown:
            views = self.views()
            for k in range(self.shown + 1, due + 1):
                print(census_line(float(k), counts_at(views, self.t0 + k, self.msl)), file=self.out)
            self.shown = due
        if final and now > self.shown:
            print(census_line(now, counts_at(self.views(), self.t0 + now, self.msl)), file=self.out)
        self.out.flush()
        return True
