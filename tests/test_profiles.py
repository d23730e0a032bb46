"""Stack profiles (--profile freebsd|linux|rfc): groups of Config knobs for where the RFCs leave room.
Each FreeBSD knob is checked by a tests/conformance/profile-freebsd-*.pkt script (test_conformance.py
runs them); here: the profile mechanism, the docs tables, the option layout and the demo sample."""

import argparse
import dataclasses
import os
import pathlib
import re
import sys

import pytest

from tcpwave.cli import knobs
from tcpwave.cli.main import main
from tcpwave.core import profiles
from tcpwave.core.config import Config
from tcpwave.packetdrill import run_file, run_text
from tcpwave.wire.options import Options, build_options, parse_options

ROOT = pathlib.Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "conformance"
sys.path.insert(0, str(ROOT / "docs"))

import profile_results  # noqa: E402  (docs/profile_results.py)


def test_linux_is_the_default_and_every_profile_knob_is_a_documented_config_field():
    defaults, fields = Config(), {f.name for f in dataclasses.fields(Config)}
    config_doc = (ROOT / "docs" / "configuration.md").read_text()
    for knob, by in profiles.CHOICES.items():
        assert knob in fields and f"`{knob}`" in config_doc, knob
        assert by["linux"].value == getattr(defaults, knob), knob
        assert set(by) <= set(profiles.NAMES) and all(c.source for c in by.values()), knob
    for name in profiles.NAMES:
        Config(**profiles.settings(name))  # each profile is a valid Config
    with pytest.raises(ValueError, match="unknown profile 'solaris'"):
        profiles.settings("solaris")


def test_every_freebsd_knob_has_a_script_that_names_it():
    scripts = {p.name: p.read_text() for p in CORPUS.glob("profile-freebsd-*.pkt")}
    assert all("--profile=freebsd" in text for text in scripts.values())
    for knob, by in profiles.CHOICES.items():
        if "freebsd" in by and by["freebsd"].value != by["linux"].value and knob not in ("recv_buffer", "send_buffer",
                                                                                          "delayed_ack"):
            assert any(knob in text for text in scripts.values()), f"no profile-freebsd script checks {knob}"


def test_the_docs_tables_are_what_docs_profile_results_writes():
    docs = (ROOT / "docs" / "packetdrill.md").read_text()
    assert profile_results.knob_table() in docs, "rerun .venv/bin/python docs/profile_results.py"
    assert profile_results.pass_table() in docs, "rerun .venv/bin/python docs/profile_results.py"


def test_a_script_header_selects_the_profile_and_the_scripts_own_knobs_win():
    script = CORPUS / "profile-freebsd-fin-acked-at-once.pkt"
    assert run_file(str(script)).ok
    text = script.read_text()
    linux = run_text(text.replace("--profile=freebsd", "--profile=linux"), str(script))
    assert not linux.ok and "options <mss 1460,nop,nop,sackOK> != <mss 1460,sackOK,eol,eol>" in linux.summary()
    knob_back = run_text(text.replace("--profile=freebsd", "--profile=freebsd\n--fin_ack_delayed=true"), str(script))
    assert not knob_back.ok and "ack 102" in knob_back.summary()
    bad = run_text(text.replace("--profile=freebsd", "--profile=solaris"), str(script))
    assert not bad.ok and "--profile=solaris: unknown profile 'solaris'" in bad.summary()


def test_packetdrill_takes_profile_on_the_command_line_as_a_default(capsys):
    linux_script = str(CORPUS / "close-simultaneous.pkt")
    freebsd_script = str(CORPUS / "profile-freebsd-closing-resends-fin.pkt")
    assert main(["packetdrill", linux_script, freebsd_script]) == 0
    assert main(["packetdrill", "--profile", "freebsd", linux_script]) == 1  # Linux's choices, under FreeBSD's
    assert main(["packetdrill", "--profile=linux", freebsd_script]) == 0  # the script's own header wins
    out = capsys.readouterr().out
    assert f"FAIL  {linux_script}:" in out and out.count(f"ok    {freebsd_script}") == 2


def test_profile_on_commands_that_take_set(capsys):
    parser = argparse.ArgumentParser()
    knobs.add(parser)
    args = parser.parse_args(["--profile", "freebsd", "--set", "quickack=3"])
    changes = knobs.changes(args)
    assert changes["quickack"] == 3 and changes["closing_resends_fin"] is True  # --set wins over the profile
    assert changes["option_layout"] == "freebsd" and "fin_ack_delayed" in changes
    assert knobs.config(parser.parse_args(["--profile", "rfc"])).time_wait_needs_ack is True
    assert knobs.changes(parser.parse_args([])) == {}
    with pytest.raises(argparse.ArgumentTypeError, match="option_layout is one of linux, freebsd"):
        knobs.changes(parser.parse_args(["--set", "option_layout=solaris"]))
    with pytest.raises(SystemExit):
        main(["demo", "--profile", "solaris"])
    assert "invalid choice: 'solaris'" in capsys.readouterr().err


def test_freebsd_option_layout_bytes():
    def laid_out(**kw) -> bytes:
        raw = build_options(Options(bsd=True, **kw))
        assert parse_options(raw) == Options(**kw)  # the layout changes the bytes, not what they say
        return raw

    assert laid_out(mss=1460, sack_permitted=True) == bytes.fromhex("020405b4" "0402" "0000")  # eol, eol
    assert laid_out(mss=1460, wscale=6, sack_permitted=True, ts=(100, 0)) == bytes.fromhex(
        "020405b4" "01030306" "0402" "080a" "00000064" "00000000")
    assert laid_out(mss=1460, ts=(1, 2)) == bytes.fromhex("020405b4" "0101" "080a" "00000001" "00000002")
    assert build_options(Options(mss=1460, sack_permitted=True)) == bytes.fromhex("020405b4" "01010402")  # Linux


def test_eol_padding_is_compared_byte_by_byte_as_packetdrill_does():
    script = (CORPUS / "profile-freebsd-synack-options.pkt").read_text()
    one_eol = run_text(script.replace("ack 1 win 65535 <mss 1460,sackOK,eol,eol>",
                                      "ack 1 win 65535 <mss 1460,sackOK,eol>"))
    assert not one_eol.ok and "<mss 1460,sackOK,eol,eol> != <mss 1460,sackOK,eol>" in one_eol.summary()


def test_the_docs_sample_of_the_close_done_both_ways_is_a_real_run(capsys):
    path = ROOT / "docs" / "packetdrill.md"
    text = path.read_text()
    block = re.search(r"```\n\$ tcpwave demo close-linux-vs-freebsd\n(.*?)```", text, re.S)
    assert main(["demo", "close-linux-vs-freebsd", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "--profile linux, segments to close: 3" in out and "--profile freebsd, segments to close: 4" in out
    if os.environ.get("TCPWAVE_UPDATE_README"):
        path.write_text(text[: block.start(1)] + out + text[block.end(1):])
        return
    assert block.group(1) == out, "the sample is stale; rerun with TCPWAVE_UPDATE_README=1"
