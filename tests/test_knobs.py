"""`--cc NAME` and `--set KNOB=VALUE`: any Config field from the command line."""

import argparse
import json

import pytest

from tcpwave.cli import knobs
from tcpwave.cli.main import build_parser, main
from tcpwave.core.config import Config


def _args(*words):
    return build_parser().parse_args(["demo", *words])


def test_values_are_converted_by_the_field_type():
    cfg = knobs.config(_args("--set", "rto_min=1", "--set", "sack=off", "--set", "mss=1000",
                             "--set", "user_timeout=none", "--set", "delayed-ack=0.1", "--cc", "reno"))
    assert cfg == Config(rto_min=1.0, sack=False, mss=1000, user_timeout=None, delayed_ack=0.1,
                         congestion_control="reno")
    assert isinstance(cfg.rto_min, float) and isinstance(cfg.mss, int)


@pytest.mark.parametrize("words, message", [
    (("--set", "bogus=1"), "KNOB one of"),
    (("--set", "sack=maybe"), "not a valid bool"),
    (("--set", "mss"), "expected KNOB=VALUE"),
    (("--cc", "vegas"), "unknown congestion control 'vegas'"),
    (("--set", "delayed_ack=0.7"), "delayed_ack must be in"),
])
def test_bad_settings_are_refused_with_a_message(words, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        knobs.config(_args(*words))


def test_the_command_line_round_trips_through_as_args():
    changes = knobs.changes(_args("--set", "msl=5", "--set", "user_timeout=none", "--cc", "bbr-lite"))
    again = knobs.changes(_args(*knobs.as_args(changes)))
    assert again == changes


def test_demo_runs_with_the_settings(tmp_path, capsys):
    log = tmp_path / "e.jsonl"
    assert main(["demo", "lossy", "--cc", "reno", "--set", "sack=off", "--events", str(log)]) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    sent = [e for e in events if e["type"] == "send" and "S" in e["flags"].split(",")[0][:1]]
    assert sent and all("sackOK" not in e.get("opts", "") for e in sent)  # SACK off reached the stacks
    assert main(["demo", "--set", "sack=maybe"]) == 2
    assert "not a valid bool" in capsys.readouterr().err


def test_bench_sim_takes_settings(capsys):
    def goodput(*extra):
        assert main(["bench", "--sim", "--seconds", "0.5", "--loss", "0", "--cc", "cubic", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)[0]["goodput_bps"]
    assert goodput("--set", "initial_cwnd_segments=2") < goodput()  # a smaller initial window shows
