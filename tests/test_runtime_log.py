"""Runtime log lines (aio/log.py) cannot block or flood the server: a peer's resets are reported through
a per-kind rate limit, a full stderr drops lines instead of blocking, and a broken stderr (EPIPE) ends
logging, not the server. The subprocess tests fail on the code before: report_abort printed every
line with a blocking, flushing print (frozen on a full pipe; BrokenPipeError on a closed one)."""

import os
import subprocess
import sys

from tcpwave.aio.log import Log

RESETS = r"""
import sys
from tcpwave.aio.services import report_abort

class Transport:
    def get_extra_info(self, name):
        return ("198.51.100.7", 40000)

for i in range(int(sys.argv[1])):
    report_abort(Transport(), ConnectionResetError(104, "read(): connection reset by peer"))
print("done")
"""


def test_resets_with_a_stderr_nobody_reads_neither_block_nor_flood():
    """20,000 resets (the review froze the server after ~900 with a pipe nobody read)."""
    proc = subprocess.Popen([sys.executable, "-c", RESETS, "20000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.wait(60)  # nobody reads stderr meanwhile
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = proc.communicate()
    assert out.strip() == b"done"
    lines = err.decode().splitlines()
    assert 1 <= len(lines) <= 100, len(lines)  # rate-limited: a few a second, not 20,000
    assert lines[0] == "tcpwave: 198.51.100.7:40000: [Errno 104] read(): connection reset by peer"


def test_a_broken_stderr_ends_logging_not_the_process():
    r, w = os.pipe()
    os.close(r)  # nobody will ever read: writes fail with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-c", RESETS, "50"], stdout=subprocess.PIPE, stderr=w, timeout=60)
    finally:
        os.close(w)
    assert proc.returncode == 0 and proc.stdout.strip() == b"done"


def test_a_full_pipe_drops_lines_and_counts_them():
    r, w = os.pipe()
    try:
        log = Log(fd=w, per_second=10**9)
        for i in range(100_000):  # far more than a pipe holds
            log.say("x", f"line {i} " + "." * 200)
        assert log.dropped > 0 and log.written > 0 and log.broken is None
        assert log.written + log.dropped == 100_000
    finally:
        os.close(r)
        os.close(w)


def test_each_kind_has_its_own_rate_and_says_how_many_were_left_out():
    r, w = os.pipe()
    now = [100.0]
    try:
        log = Log(fd=w, per_second=2, clock=lambda: now[0])
        said = [log.say("reset", f"r{i}") for i in range(5)] + [log.say("memory", "m")]
        assert said == [True, True, False, False, False, True]
        now[0] += 1
        assert log.say("reset", "r5")
        lines = os.read(r, 65536).decode().splitlines()
    finally:
        os.close(r)
        os.close(w)
    assert lines == ["tcpwave: r0", "tcpwave: r1", "tcpwave: m", "tcpwave: r5 (3 more like this left out)"]
    assert log.suppressed == 3
