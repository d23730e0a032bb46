"""The packetdrill runner itself: grammar, matching rules, timing, blocking calls and its messages.

Each test runs a small script; the failing ones check that the message names the right line
and says what was expected and what was sent.
"""

import subprocess
import sys

import pytest
from helpers import PD_ACCEPTED

from tcpwave.packetdrill import ScriptError, parse_script, run_text
from tcpwave.packetdrill.script import CallEvent, PacketEvent, SkippedEvent

HANDSHAKE = PD_ACCEPTED  # lines 1-7


def run(body: str, **defaults):
    return run_text(HANDSHAKE + body, "t.pkt", {k: str(v) for k, v in defaults.items()})


def test_a_correct_script_passes_and_logs_every_step():
    r = run("+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n")
    assert r.ok, r.summary()
    assert any("> P. 1:11(10) ack 1" in line for line in r.log)
    assert any("SYN_RCVD -> ESTABLISHED" in line for line in r.log)


def test_wrong_ack_fails_at_its_line_saying_expected_and_sent():
    r = run("+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 2\n")
    assert not r.ok and r.line == 9
    assert "expected '> P. 1:11(10) ack 2'" in r.message
    assert "sent '> P. 1:11(10) ack 1" in r.message and "ack 1 != 2" in r.message


def test_wrong_flags_length_and_window_are_each_named():
    r = run("+0 write(4, ..., 10) = 10\n+0 > . 1:12(11) ack 1 win 7\n")
    assert not r.ok and r.line == 9
    for part in ("flags P. != .", "length 10 != 11", "win 65535 != 7"):
        assert part in r.message


def test_a_packet_no_line_expects_is_a_failure():
    r = run("+0 write(4, ..., 10) = 10\n")
    assert not r.ok
    assert "unexpected packet" in r.message and "> P. 1:11(10) ack 1" in r.message


def test_an_unexpected_packet_before_a_later_line_fails_at_that_line():
    r = run("+0 write(4, ..., 10) = 10\n+1 < . 1:1(0) ack 11 win 65535\n")
    assert not r.ok and r.line == 9 and "unexpected packet sent at 0.100 s" in r.message


def test_timing_outside_the_tolerance_fails():
    r = run("+0 write(4, ..., 10) = 10\n+.01 > P. 1:11(10) ack 1\n")
    assert not r.ok and r.line == 9 and "at 0.110 s" in r.message and "at 0.100 s" in r.message
    r = run("+0 write(4, ..., 10) = 10\n+.01 > P. 1:11(10) ack 1\n", tolerance_usecs=20000)
    assert r.ok, r.summary()


def test_time_ranges_and_any_time():
    assert run("+0 write(4, ..., 10) = 10\n+0~+0.5 > P. 1:11(10) ack 1\n").ok
    assert run("+0 write(4, ..., 10) = 10\n* > P. 1:11(10) ack 1\n").ok
    late = run("+.5 write(4, ..., 10) = 10\n0.1~0.2 > P. 1:11(10) ack 1\n")
    assert not late.ok and late.line == 9


def test_a_missing_packet_says_nothing_was_sent():
    r = run("+0 > P. 1:11(10) ack 1\n")
    assert not r.ok and r.line == 8 and "nothing was sent" in r.message


def test_wrong_return_value_and_errno():
    r = run("+0 read(4, ..., 10) = 0\n")
    assert not r.ok and r.line == 8 and "would block" in r.message
    r = run("+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n+0 read(4, ..., 10) = -1 ECONNRESET\n")
    assert not r.ok and r.line == 9 and "returned -1 EAGAIN, the script expects -1 ECONNRESET" in r.message


def test_blocking_call_returns_when_the_script_says():
    body = "+0...0.2 read(4, ..., 100) = 5\n+.2 < P. 1:6(5) ack 1 win 65535\n+0 > . 1:1(0) ack 6\n"
    assert run(body).ok
    early = body.replace("0.2 read", "0.5 read")
    r = run(early)
    assert not r.ok and r.line == 8 and "returned at 0.300 s" in r.message and "0.600 s" in r.message
    never = "+0...0.2 read(4, ..., 100) = 5\n"
    r = run(never)
    assert not r.ok and r.line == 8 and "never returned" in r.message


def test_options_must_match_exactly_unless_portable():
    body = "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1 win 999 <nop,nop,TS val 1 ecr 2>\n"
    r = run(body)
    assert not r.ok and "options <> != <nop,nop,TS val 1 ecr 2>" in r.message
    assert run(body, portable="true").ok  # window and non-handshake options are relaxed
    syn = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0...0 connect(3, ..., ...) = -1 EINPROGRESS\n"
    syn = syn.replace("+0...0 connect", "+0 fcntl(3, F_SETFL, O_NONBLOCK) = 0\n+0 connect")
    wrong_order = syn + "+0 > S 0:0(0) win 1 <wscale 3,nop,sackOK,TS val 0 ecr 0,mss 9999>\n"
    assert not run_text(wrong_order, "t.pkt").ok
    assert run_text(wrong_order, "t.pkt", {"portable": "1"}).ok
    missing_sack = syn + "+0 > S 0:0(0) <mss 1460,nop,wscale 3>\n"
    r = run_text(missing_sack, "t.pkt", {"portable": "1"})
    assert not r.ok and "option sackOK present" in r.message


def test_ipv6_and_header_flags_reach_the_stack():
    body = "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n"
    assert run(body, ip_version="ipv6").ok
    text = "--mss=1200\n" + HANDSHAKE.replace("<...>", "<mss 1200>") + body
    assert run_text(text, "t.pkt", {"ip_version": "ipv6"}).ok
    bad = run_text("--ip_version=ipv5\n" + HANDSHAKE, "t.pkt")
    assert not bad.ok and bad.line == 1 and "ipv5" in bad.message


def test_shell_lines_are_skipped_and_code_blocks_run():
    text = "`echo hi`\n--send_omit_free\n" + HANDSHAKE + "%{\nprint('x')\n}%\n"
    r = run_text(text, "t.pkt")
    assert r.ok, r.summary()
    assert any("shell skipped" in n for n in r.notes)
    assert "        | x" in r.log  # the %{ }% block ran (its output goes to the -v log)
    assert any("--send_omit_free ignored" in n for n in r.notes)


def test_parser_reads_the_grammar():
    s = parse_script("""--tolerance_usecs=10000
// comment
/* block
   comment */
0.100...0.200 accept(3, ..., ...) = 4  // trailing
+.1 < P.U 1:11(10) ack 5 win 100 urg 3 <nop,nop,sack 1:2 3:4,TS val 9 ecr 8,eol>
* > S. 0:0(0) ack 1 <...>
+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
# hash comment
`tc qdisc
  show`
""")
    assert s.flags == {"tolerance_usecs": "10000"}
    call, pkt, star, opt, conn, shell = s.events
    assert isinstance(call, CallEvent) and call.line == 5 and call.when.start == 0.1 and call.when.block_end == 0.2
    assert isinstance(pkt, PacketEvent) and pkt.inbound and pkt.urg == 3 and pkt.win == 100 and pkt.ack == 5
    assert pkt.options == [("nop",), ("nop",), ("sack", (1, 2), (3, 4)), ("TS", 9, 8), ("eol",)]
    assert star.when.kind == "any" and star.options == "..."
    assert opt.args[3] == {"onoff": 1, "linger": 0}
    assert conn.ret == -1 and conn.errno == "EINPROGRESS"
    assert isinstance(shell, SkippedEvent) and shell.line == 11 and "lines 11-12" in shell.text


@pytest.mark.parametrize("line,why", [
    ("0 < S 0:5(4) win 1", "length must be end - start"),
    ("0 < . 1:1(0) ack 1", "needs 'win N'"),
    ("0 < S 0:0(0) <mss>", "cannot read option"),
    ("0 frobnicate", "expected a packet ('<' or '>') or a system call"),
    ("zero < S 0:0(0)", "expected a time"),
])
def test_parse_errors_name_the_line(line, why):
    with pytest.raises(ScriptError) as err:
        parse_script("// first\n" + line)
    assert err.value.line == 2 and why in str(err.value)
    r = run_text("// first\n" + line, "t.pkt")
    assert not r.ok and r.line == 2 and why in r.message


def test_cli_prints_one_line_per_script_and_a_total(tmp_path):
    good = tmp_path / "good.pkt"
    good.write_text(HANDSHAKE)
    bad = tmp_path / "bad.pkt"
    bad.write_text(HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 9\n")
    out = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", "--ip_version=ipv6",
                          str(good), str(bad)], capture_output=True, text=True)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == f"ok    {good}"
    assert lines[1].startswith(f"FAIL  {bad}:9: expected '> P. 1:11(10) ack 9'")
    assert lines[-1] == "1 passed, 1 failed"
    ok = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_a_time_before_a_shell_line_or_block_and_a_note_after_any_return_value():
    s = parse_script("""0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
0.00 `sysctl -q net.ipv4.tcp_timestamps=0`
+.5 %{ assert tcpi_state == TCP_LISTEN }%
+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0 (success)
""")
    _, shell, code, getfl, setfl = s.events
    assert isinstance(shell, SkippedEvent) and shell.kind == "shell" and shell.when.kind == "abs"
    assert isinstance(code, SkippedEvent) and code.kind == "code" and code.when.start == 0.5
    assert getfl.ret == 2 and setfl.ret == 0
    r = run(HANDSHAKE_TAIL)
    assert r.ok, r.summary()


HANDSHAKE_TAIL = """0.200 `echo timed shell lines are skipped, at their time`
+0 fcntl(4, F_GETFL) = 0x02 (flags O_RDWR)
"""


SYN_WITH_TS = """0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 3>
"""


@pytest.mark.parametrize("shell", ["`sysctl -q net.ipv4.tcp_timestamps=0`",
                                   "0.000 `sysctl -w net.ipv4.tcp_timestamps=0`",
                                   "`echo 0 > /proc/sys/net/ipv4/tcp_timestamps`",
                                   "`sysctl net.inet.tcp.rfc1323=0; sysctl net.ipv4.tcp_window_scaling=1`"])
def test_sysctl_lines_become_knobs_in_virtual_time(shell):
    r = run_text(shell + "\n" + SYN_WITH_TS, "t.pkt")
    assert r.ok, r.summary()  # the SYN,ACK carries no timestamp: the setting took
    assert any("sysctl: timestamps=False" in n for n in r.notes)
    assert not run_text(SYN_WITH_TS, "t.pkt").ok  # without it, it does


def test_freebsd_sysctl_names_get_their_linux_names_for_the_kernel_and_the_rest_are_named():
    from tcpwave.packetdrill.sysctl import to_linux

    command, none = to_linux("sysctl -w net.inet.tcp.rfc1323=0 net.inet.tcp.msl=2000; "
                             "sysctl net.inet.tcp.keepidle=7000 && sysctl -q net.inet.tcp.drop_synfin=1")
    assert command == ("sysctl -w net.ipv4.tcp_timestamps=0 net.ipv4.tcp_window_scaling=0 ; "
                       "sysctl net.ipv4.tcp_keepalive_time=7 && true")
    assert none == ["net.inet.tcp.msl=2000", "net.inet.tcp.drop_synfin=1"]
    assert to_linux("sysctl -q net.ipv4.tcp_sack=0") == ("sysctl -q net.ipv4.tcp_sack=0", [])


def test_sysctl_table_maps_linux_and_freebsd_names_and_notes_the_rest():
    from tcpwave.packetdrill.sysctl import changes

    found, rest = changes("`sysctl -w net.ipv4.tcp_fin_timeout=5 net.ipv4.tcp_retries2=3; sysctl -q "
                          "net.inet.tcp.insecure_rst=1 && sysctl net.inet.tcp.msl=2000; ip link show; "
                          "sysctl -w net.ipv4.tcp_frobnicate=1`")
    assert found == {"fin_timeout": 5.0, "data_retries": 3, "rfc5961": False, "msl": 2.0}
    assert rest == ["net.ipv4.tcp_frobnicate=1", "ip link show"]
    r = run_text("`sysctl -q net.ipv4.tcp_frobnicate=1; tc qdisc show`\n" + HANDSHAKE, "t.pkt")
    assert r.ok and any("shell skipped: net.ipv4.tcp_frobnicate=1; tc qdisc show" in n for n in r.notes)


# ---------------------------------------------------------------- the rest of packetdrill's grammar
def test_packet_grammar_ip_fields_ports_any_seq_ack_without_ack_flag_and_more_flags():
    s = parse_script("""0 < [ect0] S 0:0(0) win 100
+0 < (tos 0x2, ttl 9) 43211>8080 S. 0:0(0) ack 5 win 100
+0 > . ... ack 1
+0 < R 1:1(0) ack 7 win 0
+0 > 1 1:1(0) ack 1
+0 > SA. 0:0(0) ack 1 <md5 000102,FO abcd,FOEXP>
+0 < [ce, flowlabel 0x12] -  1:1(0) win 1
""")
    ecn, ports, anyseq, rst, ace, opts, none = s.events
    assert ecn.ip == {"ecn": 2} and ports.ip == {"tos": 2, "ttl": 9} and ports.ports == (43211, 8080)
    assert anyseq.any_seq and not anyseq.inbound and rst.ack == 7
    assert ace.flags == 0x40 and opts.flags & 0x100  # ACE 1 = ECE; A = AE
    assert opts.options == [("md5", bytes([0, 1, 2])), ("FO", bytes.fromhex("abcd")), ("FOEXP", b"")]
    assert none.flags == 0 and none.ip == {"ecn": 3, "flowlabel": 0x12}


@pytest.mark.parametrize("line,why", [
    ("0 < ipv4 192.0.2.2 > 192.0.2.1: S 0:0(0) win 1", "ipv4 encapsulation prefix"),
    ("0 < gre: S 0:0(0) win 1", "GRE encapsulation prefix"),
    ("0 < udp (10)", "udp packets are not supported"),
    ("0 < icmp unreachable port_unreachable", "icmp packets are not supported"),
    ("0 < SX 0:0(0) win 1", "invalid TCP flag 'X'"),
    ("0 < E1 0:0(0) win 1", "conflicting TCP flags"),
    ("0 < S ... win 1", "needs its sequence range"),
    ("0 < 1:1(0) ack 1 win 1", "the flags come before 1:1(0)"),
    ("0 < [ect9] S 0:0(0) win 1", "cannot read IP field 'ect9'"),
])
def test_constructs_tcpwave_refuses_are_named_at_their_line(line, why):
    r = run_text("// first\n" + line, "t.pkt")
    assert not r.ok and r.line == 2 and why in r.message, r.message


def test_an_injected_ack_field_without_the_ack_flag_goes_on_the_wire_as_written():
    # a RST carrying an ACK number but no ACK flag: the number is not mapped into tcpwave's space,
    # so the RST is checked by its sequence number alone and resets the connection
    r = run("+0 < R 1:1(0) ack 12345 win 0\n+0 write(4, ..., 1) = -1 ECONNRESET\n")
    assert r.ok, r.summary()


def test_any_sequence_range_matches_any_segment_of_the_right_flags():
    r = run("+0 write(4, ..., 10) = 10\n+0 > P. ... ack 1\n")
    assert r.ok, r.summary()
    r = run("+0 write(4, ..., 10) = 10\n+0 > F. ... ack 1\n")
    assert not r.ok and "flags P. != F." in r.message


# ---------------------------------------------------------------- %{ }% and tcp_info
TCP_INFO_SCRIPT = """0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 %{ assert tcpi_state == TCP_LISTEN and tcpi_state == TCPI_LISTEN }%
+0 < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+0 %{ assert tcpi_state == TCP_SYN_RECV, tcpi_state }%
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
%{
assert tcpi_state == TCP_ESTABLISHED
assert tcpi_options & TCPI_OPT_SACK
assert tcpi_snd_mss == 1000
assert 100000 <= tcpi_rtt <= 101000, tcpi_rtt
assert tcpi_snd_cwnd == 10
assert tcpi_rcv_wscale == 3
}%
+0 write(4, ..., 3000) = 3000
+0 > . 1:1001(1000) ack 1
+0 > P. 1001:2001(1000) ack 1
+0 > P. 2001:3001(1000) ack 1
+0 %{ assert tcpi_unacked == 3 }%
"""


def test_code_blocks_assert_on_tcp_info_with_linux_and_freebsd_state_names():
    r = run_text(TCP_INFO_SCRIPT, "t.pkt")
    assert r.ok, r.summary()
    assert any("%{ assert tcpi_state == TCP_SYN_RECV" in line and line.endswith("ok") for line in r.log)


def test_a_failing_assertion_fails_the_script_at_its_blocks_line_with_the_fields_as_packetdrill():
    bad = TCP_INFO_SCRIPT.replace("assert tcpi_snd_cwnd == 10", "assert tcpi_snd_cwnd == 11")
    r = run_text(bad, "t.pkt")
    block, line = bad.splitlines().index("%{") + 1, bad.splitlines().index("assert tcpi_snd_cwnd == 11") + 1
    assert not r.ok and r.line == block  # packetdrill names the block's line ("error in Python code")
    assert f"line {line}: assertion failed: assert tcpi_snd_cwnd == 11; tcp_info: {{'tcpi_snd_cwnd': 10}}" in r.message
    r = run_text(TCP_INFO_SCRIPT.replace("TCP_LISTEN and", "TCP_LISTN and"), "t.pkt")
    assert not r.ok and r.line == 4 and "NameError" in r.message


def test_blocks_run_after_the_last_line_with_the_tcp_info_of_their_time_as_packetdrill():
    # a failing block does not stop the script: a packet line after it that fails is what is reported
    early = TCP_INFO_SCRIPT.replace("TCP_SYN_RECV, tcpi_state", "TCP_CLOSE, tcpi_state")
    r = run_text(early, "t.pkt")
    assert not r.ok and r.line == 7 and "assertion failed" in r.message and "tcp_info of 0.000 s" in r.message
    r = run_text(early.replace("> P. 2001:3001(1000) ack 1", "> P. 2001:3001(1000) ack 2"), "t.pkt")
    assert not r.ok and r.line == early.splitlines().index("+0 > P. 2001:3001(1000) ack 1") + 1
    # one program: a name set by a block is seen by the next; no socket yet is packetdrill's runtime error
    sets = TCP_INFO_SCRIPT.replace("%{\n", "%{\nfirst = tcpi_state\n")
    r = run_text(sets + "%{ assert first == TCP_ESTABLISHED }%\n", "t.pkt")
    assert r.ok, r.summary()
    r = run_text("0 %{ assert True }%\n" + TCP_INFO_SCRIPT, "t.pkt")
    assert not r.ok and r.line == 1 and "no socket to use for code" in r.message


def test_tcp_info_follows_the_connection_through_loss_and_close():
    r = run("""+0 write(4, ..., 2000) = 2000
+0 > . 1:1001(1000) ack 1
+0 > P. 1001:2001(1000) ack 1
+0 %{ assert tcpi_unacked == 2 and tcpi_retransmits == 0 and tcpi_ca_state == TCP_CA_Open }%
+.3 > . 1:1001(1000) ack 1
+0 %{ assert tcpi_retransmits == 1 and tcpi_backoff == 1 and tcpi_total_retrans == 1 }%
+0 %{ assert tcpi_ca_state == TCP_CA_Loss and tcpi_lost >= 1 and tcpi_rto >= 600000, (tcpi_rto, tcpi_lost) }%
+.1 < . 1:1(0) ack 2001 win 65535
+0 %{ assert tcpi_unacked == 0 and tcpi_retransmits == 0 and tcpi_state == TCP_ESTABLISHED }%
+0 close(4) = 0
+0 > F. 2001:2001(0) ack 1
+0 %{ assert tcpi_state == TCP_FIN_WAIT1 and tcpi_state == TCPI_FIN_WAIT_1 }%
""")
    assert r.ok, r.summary()


# ---------------------------------------------------------------- the other system calls
def test_poll_ioctl_vector_and_message_calls_names_and_tcp_info_by_getsockopt():
    r = run_text("""0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+0...0.1 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 1000) = 1
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_snd_mss=1000}, [...]) = 0
+0 getsockname(4, ..., ...) = 0
+0 getpeername(4, ..., ...) = 0
+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1
+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [100000], 4) = 0
+0 writev(4, [{..., 5}, {..., 5}], 2) = 10
+0 > P. 1:11(10) ack 1
+0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 10}], msg_flags=0}, 0) = 10
+0 ioctl(4, SIOCOUTQ, [20]) = 0
+.1 < P. 1:6(5) ack 11 win 65535
+0 > P. 11:21(10) ack 6
+.1 < . 6:6(0) ack 21 win 65535
+0 ioctl(4, FIONREAD, [5]) = 0
+0 recvfrom(4, ..., 100, 0, ..., ...) = 5
+0...0.3 poll([{fd=4, events=POLLIN, revents=0}], 1, 300) = 0
+.3 < F. 6:6(0) ack 21 win 65535
+.04 > . 21:21(0) ack 7
+0 poll([{fd=4, events=POLLIN|POLLRDHUP, revents=POLLIN|POLLRDHUP}], 1, 0) = 1
+0 readv(4, [{..., 10}], 1) = 0
""", "t.pkt")
    assert r.ok, r.summary()
    assert any("poll([{fd=4, events=POLLIN, revents=0}], 1, 300) = 0" in line for line in r.log)


@pytest.mark.parametrize("call,why", [
    ("ioctl(4, FIONREAD, [3]) = 0", "ioctl FIONREAD gave [0], the script expects [3]"),
    ("poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1", "revents 0, the script expects POLLIN"),
    ("getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_LISTEN}, [...]) = 0", "tcpi_state is 1"),
    ("mmap(4, ...) = 0", "system call mmap() is not supported"),
    ("ioctl(4, SIOCATMARK, [0]) = 0", "ioctl request SIOCATMARK is not supported"),
])
def test_wrong_results_and_unsupported_calls_fail_at_their_line(call, why):
    r = run("+0 " + call + "\n")
    assert not r.ok and r.line == 8 and why in r.message, r.message


def test_buffer_sizes_may_change_after_connect():
    # the peer's window allows everything: only the 2000-byte send buffer holds the write back...
    r = run("+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [2000], 4) = 0\n"
            "+0 fcntl(4, F_SETFL, O_NONBLOCK) = 0\n+0 write(4, ..., 5000) = 2000\n"
            "+0 > . 1:1001(1000) ack 1\n+0 > P. 1001:2001(1000) ack 1\n"
            "+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [100000], 4) = 0\n+0 write(4, ..., 3000) = 3000\n"
            "+0 > . 2001:3001(1000) ack 1\n+0 > P. 3001:4001(1000) ack 1\n+0 > P. 4001:5001(1000) ack 1\n")
    assert r.ok, r.summary()


# ---------------------------------------------------------------- several connections
MULTI = """0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 2) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 < 43211>8080 S 0:0(0) win 65535 <mss 1000>
+0 > 8080>43211 S. 0:0(0) ack 1 <...>
+0 < 43211>8080 . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 5
+0 write(5, ..., 10) = 10
+0 > P. 1:11(10) ack 1
+0 close(4) = 0
+0 > 8080>43210 F. 1:1(0) ack 1
+0 < F. 1:1(0) ack 2 win 65535
+0 > . 2:2(0) ack 2
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_NONBLOCK) = 0
+0 connect(4, ..., ...) = -1 EINPROGRESS
+0 > S 0:0(0) <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 3>
"""


def test_several_connections_each_with_its_descriptor_and_ports():
    r = run_text(MULTI, "t.pkt")
    assert r.ok, r.summary()
    r = run_text(MULTI.replace("> 8080>43210 F.", "> 8080>43211 F."), "t.pkt")
    assert not r.ok and r.line == 15 and "sent from port 8080 to 43210" in r.message


def test_a_second_listener_child_gets_a_port_of_its_own():
    r = run("""+0 close(4) = 0
+0 > F. 1:1(0) ack 1
+0 < F. 1:1(0) ack 2 win 65535
+0 > . 2:2(0) ack 2
+0 close(3) = 0
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
""")
    assert r.ok, r.summary()
    assert any("192.0.2.2:43211" in line for line in r.log)  # not 43210, whose TIME_WAIT would answer


# ---------------------------------------------------------------- --portable: what packetdrill checks
def test_portable_leaves_packets_after_the_last_line_unchecked_but_default_mode_does_not():
    body = "+0 write(4, ..., 10) = 10\n"
    assert not run(body).ok
    assert run(body, portable=True).ok


def test_portable_checks_an_extra_packet_at_the_next_outbound_line_as_packetdrill_does():
    body = "+0 write(4, ..., 10) = 10\n+.1 < . 1:1(0) ack 11 win 65535\n+0 write(4, ..., 5) = 5\n" \
           "+0 > P. 11:16(5) ack 1\n"
    strict = run(body)
    assert not strict.ok and strict.line == 9 and "unexpected packet" in strict.message
    portable = run(body, portable=True)
    assert not portable.ok and portable.line == 11 and "sent '> P. 1:11(10) ack 1" in portable.message


def test_a_call_written_as_non_blocking_is_waited_for_until_it_returns():
    """As packetdrill: the blocked read returns when the stack gives up (ETIMEDOUT at 7.8 s); the
    retransmissions sent meanwhile are matched by the lines after it, at their own times."""
    body = ("+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n"
            "+0 read(4, ..., 10) = -1 ETIMEDOUT\n+.3 > P. 1:11(10) ack 1\n+.6 > P. 1:11(10) ack 1\n")
    r = run(body, data_retries=2)
    assert r.ok, r.summary()
    assert any("ETIMEDOUT" in line for line in r.log)
    idle = run("+0 read(4, ..., 10) = 0\n")
    assert not idle.ok and idle.line == 8 and "nothing in the stack would end it" in idle.message
