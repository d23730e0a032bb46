"""Grammar peers' scripts use: #ifdef / #ifndef / #else / #endif with -D NAME, errno aliases compared
by value, `...(N)` on a `>` line, TCP_INFO on a socket that has no connection yet, TSO-sized segments."""

import subprocess
import sys

import pytest

from tcpwave.packetdrill import ScriptError, parse_script, run_text
from tcpwave.packetdrill.runner import Runner
from tcpwave.packetdrill.script import PacketEvent, preprocess

LISTEN = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
"""  # lines 1-4

BRANCHES = LISTEN + """\
#ifdef Linux
+0 > S. ...(0) ack 1 <...>
#else
+0 > S. 0:0(0) ack 1 win 1 <mss 1000>
#endif
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
"""  # the #else branch expects a window tcpwave never offers


def test_only_the_defined_branch_runs():
    linux = run_text(BRANCHES, "t.pkt", defines={"Linux": ""})
    assert linux.ok, linux.summary()
    other = run_text(BRANCHES, "t.pkt")
    assert not other.ok and other.line == 8, other.summary()  # the #else branch, at its own line


def test_ifndef_and_nesting_and_line_numbers():
    text = "#ifndef A\n#ifdef B\nb\n#else\nnot_b\n#endif\n#else\na\n#endif\nall\n"
    lines = text.split("\n")
    assert [x for x in preprocess(lines) if x] == ["not_b", "all"]
    assert [x for x in preprocess(lines, {"B": "1"}) if x] == ["b", "all"]
    assert [x for x in preprocess(lines, {"A": ""}) if x] == ["a", "all"]
    assert preprocess(lines, {"A": ""}).index("a") == 7  # blank lines keep the numbering


@pytest.mark.parametrize("text, line, words", [
    ("#ifdef X\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", 1, "without #endif"),
    ("#endif\n", 1, "without #ifdef"),
    ("#ifdef X\n#else\n#else\n#endif\n", 3, "second #else"),
    ("#ifdef\n#endif\n", 1, "needs one name"),
])
def test_unbalanced_blocks_are_script_errors(text, line, words):
    with pytest.raises(ScriptError) as e:
        parse_script(text)
    assert e.value.line == line and words in str(e.value)


def test_ellipsis_with_a_length_checks_the_length_only():
    ev = parse_script("0 > P. ...(10) ack 1\n").events[0]
    assert isinstance(ev, PacketEvent) and ev.any_seq and ev.any_len == 10
    script = LISTEN + "+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 4\n"
    ok = run_text(script + "+0 write(4, ..., 10) = 10\n+0 > P. ...(10) ack 1\n", "t.pkt")
    assert ok.ok, ok.summary()
    bad = run_text(script + "+0 write(4, ..., 10) = 10\n+0 > P. ...(9) ack 1\n", "t.pkt")
    assert not bad.ok and "length 10 != 9" in bad.message


def test_errno_aliases_compare_by_value():
    script = LISTEN + ("+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 4\n"
                       "+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n")
    alias = run_text(script + "+0 read(4, ..., 10) = -1 EWOULDBLOCK (Resource temporarily unavailable)\n", "t.pkt")
    assert alias.ok, alias.summary()
    other = run_text(script + "+0 read(4, ..., 10) = -1 EINTR\n", "t.pkt")
    assert not other.ok and "EAGAIN" in other.message


def test_tcp_info_before_connect_is_closed():
    base = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    closed = run_text(base + "+0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=TCP_CLOSE}, [...]) = 0\n", "t.pkt")
    assert closed.ok, closed.summary()
    wrong = run_text(base + "+0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED}, [...]) = 0\n", "t.pkt")
    assert not wrong.ok and "tcpi_state is 7" in wrong.message


def test_cli_takes_dash_d_and_packetdrills_define(tmp_path):
    path = tmp_path / "b.pkt"
    path.write_text(BRANCHES)
    for args in (["-D", "Linux"], ["-DLinux"], ["--define=Linux=1"]):
        done = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", *args, str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    done = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "b.pkt:8" in done.stdout


def test_tso_size_lets_one_segment_carry_several_mss():
    """--tso_size: a 10000-byte write leaves as one segment, as a device with TSO sends it; without the
    flag the same line fails (segments are cut at the MSS of 1000)."""
    script = LISTEN + ("+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 4\n"
                       "+0 write(4, ..., 10000) = 10000\n+0 > P. 1:10001(10000) ack 1\n"
                       "+.1 < . 1:1(0) ack 10001 win 65535\n")
    assert run_text(script, "t.pkt", {"tso_size": "65535"}).ok
    plain = run_text(script, "t.pkt")
    assert not plain.ok and "length 1000 != 10000" in plain.message
    with pytest.raises(ScriptError):
        Runner(parse_script("--tso_size=70000\n" + script))


def test_tc_qdisc_limit_0_on_the_device_drops_what_the_stack_sends():
    """`tc qdisc ... limit 0` on the test device: the data leaves the stack but never reaches the wire,
    so the first `>` the script sees is the retransmission after the qdisc is gone; a script that
    expects the original fails. Commands on `lo`, or not tc, are still skipped."""
    script = LISTEN + ("+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 4\n"
                       "+0 `tc qdisc add dev tun0 root pfifo limit 0`\n+0 write(4, ..., 100) = 100\n"
                       "+.5 `tc qdisc del dev tun0 root`\n{expect}\n")
    r = run_text(script.format(expect="+.6 > P. 1:101(100) ack 1"), "t.pkt", {"rto_min": "1"})
    assert r.ok, r.summary()
    assert any("dropped by the device" in line for line in r.log)
    missed = run_text(script.format(expect="+0 > P. 1:101(100) ack 1"), "t.pkt", {"rto_min": "1"})
    assert not missed.ok
    lo = run_text(script.replace("dev tun0", "dev lo").format(expect="+.6 > P. 1:101(100) ack 1"), "t.pkt",
                  {"rto_min": "1"})
    assert not lo.ok  # on lo nothing is dropped: the original went out unexpected
