"""The reason enums (one table each) and the Timers object (one slot for the exclusive timers)."""

import errno
import pathlib
import re

import pytest

from tcpwave.core.errors import closed_error
from tcpwave.core.reasons import CloseReason, DropReason
from tcpwave.core.timers import PERSIST, RETRANSMIT, TLP, Timers
from tcpwave.core.trace import ListSink, Tracer

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "tcpwave"


def test_close_reasons_carry_their_errno_and_exception():
    assert CloseReason.RESET == "reset" and CloseReason.RESET.errno == errno.ECONNRESET
    e = closed_error("send", "CLOSED", CloseReason.REFUSED)
    assert isinstance(e, ConnectionRefusedError) and e.errno == errno.ECONNREFUSED
    assert isinstance(closed_error("recv", "CLOSED", CloseReason.TIMED_OUT), TimeoutError)
    assert CloseReason.NORMAL.exception("send") is None and CloseReason.ABORTED.errno is None


def test_every_drop_reason_in_the_source_is_a_drop_reason():
    """Drops are named from the enum; the wire parsers' MalformedPacket reasons are members too."""
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    wire = set(re.findall(r'MalformedPacket\("([a-z_0-9]+)"', text))
    assert wire and wire <= {r.value for r in DropReason}
    assert not re.findall(r'\.drop\(seg, "', text) and not re.findall(r'_drop\(now, "', text)


def test_the_event_docs_name_only_real_drop_reasons():
    readme = (SRC.parent.parent / "docs" / "events.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `drop` |"))
    named = set(re.findall(r"`([a-z_0-9]+)`", row)) - {"drop", "where", "link", "reason"}
    assert named and named <= {r.value for r in DropReason}


def test_exclusive_timers_share_one_slot_and_trace_themselves():
    sink = ListSink()
    t = Timers(Tracer(sink), "h")
    t.arm(RETRANSMIT, 0.0, 1.0)
    t.arm("delayed_ack", 0.0, 0.04)
    t.arm(TLP, 0.5, 0.1)  # replaces the retransmission timer
    assert t.slot == TLP and set(t.armed()) == {TLP, "delayed_ack"}
    t.arm(PERSIST, 0.6, 0.2)
    assert t.slot == PERSIST and RETRANSMIT not in t and TLP not in t
    assert t.next() == pytest.approx(0.04)
    assert t.take("delayed_ack", 0.04) and not t.take(PERSIST, 0.5)  # not yet due
    t.cancel(PERSIST, 0.7)
    assert t.slot is None and t.armed() == {}
    actions = [(e["name"], e["action"]) for e in sink]
    assert actions == [(RETRANSMIT, "arm"), ("delayed_ack", "arm"), (RETRANSMIT, "cancel"), (TLP, "arm"),
                       (TLP, "cancel"), (PERSIST, "arm"), ("delayed_ack", "fire"), (PERSIST, "cancel")]
