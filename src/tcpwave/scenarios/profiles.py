"""Profile scenarios: the same run with two stacks' choices (--profile, core/profiles.py), drawn one
after the other, where the RFCs leave room."""

import dataclasses

from ..core import profiles
from ..core.config import Config
from .registry import CONFIG, Demo, Result, echo_then_close, scenario

CLOSE_AFTER = 0.020  # the server's application closes 20 ms after reading the FIN: inside the 40 ms ACK delay


def _close_run(seed: int, tracer, taps: list, profile: str) -> tuple[Demo, list[str]]:
    base = CONFIG.get() or Config()
    d = Demo(seed, tracer, taps, config=dataclasses.replace(base, **profiles.settings(profile)))
    echo_then_close(d, b"hello, server", b"hello, client", close_after=CLOSE_AFTER)
    d.listen()
    d.connect()
    d.run()
    sends = [e for e in d.sink if e["type"] == "send"]
    first_fin = next((i for i, e in enumerate(sends) if e["host"] == "client" and "FIN" in e["flags"]), len(sends))
    return d, [f"{e['host']} {e['flags']}" for e in sends[first_fin:]]


@scenario("close-linux-vs-freebsd", "one close done both ways: the server closes 20 ms after reading the "
                                    "client's FIN. Linux delays that FIN's ACK and sends it on its own FIN "
                                    "(three segments); FreeBSD ACKs a FIN at once (four segments)")
def run_close_linux_vs_freebsd(seed: int, tracer=None, taps=()) -> Result:
    linux, linux_close = _close_run(seed, None, [], "linux")
    d, freebsd_close = _close_run(seed, tracer, list(taps), "freebsd")
    res = d.result("close-linux-vs-freebsd", seed,
                   linux_three_segments=linux_close == ["client FIN,ACK", "server FIN,ACK", "client ACK"],
                   freebsd_four_segments=freebsd_close == ["client FIN,ACK", "server ACK", "server FIN,ACK",
                                                           "client ACK"],
                   closed_normally=d.closed_normally() and linux.closed_normally())
    res.before = [("--profile linux", list(linux.sink), max((e["t"] for e in linux.sink), default=0.0))]
    res.title = "--profile freebsd"
    res.info = {"--profile linux, segments to close": len(linux_close),
                "--profile freebsd, segments to close": len(freebsd_close)}
    return res
