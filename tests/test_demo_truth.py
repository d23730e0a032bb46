"""What `tcpwave demo` shows is what happened: every segment that arrives was drawn as sent, every
run a scenario makes is drawn, and every note under --explain is computed from the events it
explains (issue 27)."""

import subprocess

from tcpwave.cli.main import main
from tcpwave.scenarios import SCENARIOS


def _key(e: dict) -> tuple:
    return (e["src"], e["dst"], e["flags"], e["seq"], e["ack"], e["len"])


def unsent_arrivals(events: list[dict]) -> list[dict]:
    """recv events with no send of the same segment at or before them."""
    sent: dict[tuple, int] = {}
    missing = []
    for e in events:
        if e["type"] == "send":
            sent[_key(e)] = sent.get(_key(e), 0) + 1
        elif e["type"] == "recv" and not sent.get(_key(e)):
            missing.append(e)
    return missing


def test_old_duplicate_draws_the_late_segment_as_sent_in_both_runs(tmp_path, capsys):
    r = SCENARIOS["old-duplicate"].run(1, None, [])
    runs = [events for _, events, _ in r.before] + [r.events]
    assert len(runs) == 2
    for events in runs:
        assert unsent_arrivals(events) == []
        late = [e for e in events if e["type"] == "send" and e.get("note", "").startswith("old copy of")]
        assert len(late) == 1 and late[0]["len"] == len(b"OLD DATA from the first connection")
    pcap, svg = tmp_path / "od.pcap", tmp_path / "od.svg"
    assert main(["demo", "old-duplicate", "--pcap", str(pcap), "--svg", str(svg), "--html",
                 str(tmp_path / "od.html"), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "run 1 of 2: with TIME_WAIT (60 s)" in out and "run 2 of 2: without TIME_WAIT (2 ms)" in out
    assert out.count("(old copy of ") == 2  # one ladder per run, each with the late segment
    for n in (1, 2):
        assert "old copy of" in (tmp_path / f"od-{n}.svg").read_text()
    assert (tmp_path / "od.html").read_text().count("old copy of") >= 2
    dump = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True, check=True).stdout
    assert sum("length 34" in line for line in dump.splitlines()) == 2  # the original and the late copy
