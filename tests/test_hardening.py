"""Hardening (the review's defects): unpredictable secrets, bounded persist probing, TS.Recent's
24-day limit, orphan FIN_WAIT_2, keep-alive refreshed only by acceptable segments, TIME_WAIT kept
when the backlog is full, rate-limited challenge ACKs and RSTs, servers that forget their
transports. Each test fails against the code before the fix."""

import asyncio

import pytest
from helpers import PLAIN, established, fin_wait_2
from test_stack import ME, PEER, Wire, _active_close_to_time_wait

from tcpwave.aio import MemoryLink, Runtime, open_connection, start_server
from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.stack import Stack
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, RST, SYN, Segment


def _first_syn(stack: Stack):
    conn = stack.connect("192.0.2.1", 80, 0.0)
    assert len(stack.packets_to_send()) == 1  # the SYN
    return conn


def test_unseeded_stacks_choose_unpredictable_ports_isns_and_timestamps():
    a, b = Stack(["192.0.2.2"]), Stack(["192.0.2.2"])
    ca, cb = _first_syn(a), _first_syn(b)
    assert (ca.local[1], ca.iss, ca.tsval()) != (cb.local[1], cb.iss, cb.tsval())
    s1, s2 = Stack(["192.0.2.2"], seed=5), Stack(["192.0.2.2"], seed=5)
    c1, c2 = _first_syn(s1), _first_syn(s2)
    assert (c1.local[1], c1.iss, c1.tsval()) == (c2.local[1], c2.iss, c2.tsval())  # seeded: replayable


def test_persist_backoff_is_capped_and_never_overflows():
    """Probing a zero window for days: the interval stays at rto_max (no OverflowError after ~1000
    doublings), and the connection lives on while the peer answers."""
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0))
    p.deliver(".", window=0)
    p.call("send", b"w" * 100)
    for _ in range(1200):
        p.fire_next_timer()
        p.deliver(".", window=0)  # answered, still closed
    assert p.state == "ESTABLISHED"
    assert p.conn.next_timer() - p.now == Config().rto_max


def test_unanswered_zero_window_probes_give_up():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, data_retries=3))
    p.deliver(".", window=0)
    p.call("send", b"w" * 100)
    probes = 0
    while p.state == "ESTABLISHED" and probes < 50:
        out = p.fire_next_timer()
        probes += sum(1 for s in out if not s.flags & RST)
    assert p.state == "CLOSED" and probes == 3
    assert [e.reason for e in p.events() if isinstance(e, ev.Closed)] == ["timed_out"]
    assert p.sent[-1].flags & RST  # the peer is told


def test_ts_recent_older_than_24_days_is_not_trusted():
    """RFC 7323 §5.5: after 24 idle days a segment is not dropped by PAWS for an old TS.Recent."""
    from helpers import syn_sent

    p = syn_sent(Config(window_scaling=False, sack=False, delayed_ack=0))
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, ts=(100_000, 0)))
    p.advance(25 * 86400.0)
    # the peer's clock restarted meanwhile: its TSval is now "older" than TS.Recent
    out = p.deliver("P.", payload=b"late", options=Options(ts=(50_000, 0)))
    assert out and out[-1].ack == seq_add(p.peer_nxt, 4)
    p2 = syn_sent(Config(window_scaling=False, sack=False, delayed_ack=0))
    p2.peer_nxt = seq_add(p2.peer_iss, 1)
    p2.deliver("S.", seq=p2.peer_iss, ack=seq_add(p2.iss, 1), options=Options(mss=1460, ts=(100_000, 0)))
    p2.advance(3600.0)  # an hour: PAWS still applies
    p2.deliver("P.", payload=b"old", options=Options(ts=(50_000, 0)))
    assert "paws" in p2.drops()


def test_an_orphan_fin_wait_2_is_reset_after_fin_timeout():
    p = fin_wait_2(Config(timestamps=False, window_scaling=False, sack=False, fin_timeout=60.0))
    p.call("close")  # the application is gone: nobody will read
    out = p.advance(p.now + 60.0)
    assert p.state == "CLOSED" and out and out[-1].flags & RST


def test_fin_wait_2_after_shutdown_has_no_timeout():
    p = fin_wait_2(PLAIN)  # shutdown(): still reading, the peer may take its time (RFC 9293 §3.6)
    p.advance(p.now + 3600.0)
    assert p.state == "FIN_WAIT_2"


def test_out_of_window_segments_do_not_refresh_keepalive():
    cfg = Config(timestamps=False, window_scaling=False, sack=False, keepalive=True, keepalive_idle=10.0,
                 keepalive_interval=1.0, keepalive_count=2)
    p = established(cfg)
    p.advance(5.0)
    p.deliver(".", seq=seq_add(p.peer_nxt, 1_000_000))  # junk far outside the window
    out = p.advance(10.0)
    assert [s.seq for s in out] == [seq_add(p.our_nxt, -1)]  # the probe still goes at 10 s


def test_a_reopening_syn_dropped_for_a_full_backlog_keeps_time_wait():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, backlog=1))
    old, _ = _active_close_to_time_wait(w)
    w.handshake(40001)  # another client fills the accept queue (established, not yet accepted)
    assert w.send(Segment(40000, 80, 900_000, 0, SYN, 65535)) == []
    assert old.state is State.TIME_WAIT and "backlog_full" in w.drops()


def test_challenge_acks_have_one_budget_per_second_for_the_stack():
    """RFC 5961 §7: 3000 forged in-window RSTs over 300 connections in one second draw at most
    1.5 x challenge_ack_limit ACKs (Linux randomises each second's budget within [limit/2, 1.5 limit])."""
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, challenge_ack_limit=100, backlog=1000))
    w.stack.listen(80, w.now)
    for port in range(300):
        w.handshake(10_000 + port, iss=5000)
    sent = 0
    for i in range(3000):
        w.now = i / 3000
        port = 10_000 + i % 300
        sent += len(w.send(Segment(port, 80, 5001 + 100, 0, RST, 0)))
    # each connection alone would answer twice (once per 500 ms): 600; the stack's budget cuts that
    assert 50 <= sent <= 150
    assert w.stack.challenges.denied >= 600 - 150


def test_resets_for_closed_ports_are_rate_limited():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, rst_limit=200))
    rsts = 0
    for i in range(2000):
        w.now = i / 2000
        rsts += len(w.send(Segment(20_000 + i, 81, 1000, 0, SYN, 65535)))
    assert 100 <= rsts <= 300
    assert w.drops().count("no_socket") == 2000  # every segment is still dropped, with its reason


def test_a_server_forgets_the_transports_of_finished_connections():
    async def main():
        a, b = MemoryLink.pair()
        client = Runtime(Stack(["192.0.2.1"], seed=1, config=Config(msl=0.05)), a)
        server = Runtime(Stack(["192.0.2.2"], seed=2), b)

        async def echo(reader, writer):
            writer.write(await reader.read())
            await writer.drain()
            writer.close()

        srv = await start_server(echo, "192.0.2.2", 7, runtime=server)
        for _ in range(20):
            reader, writer = await open_connection("192.0.2.2", 7, runtime=client)
            writer.write(b"x")
            writer.write_eof()
            assert await reader.read() == b"x"
            writer.close()
            await writer.wait_closed()
        # one more exchange: the server handles packets in order, so once it is done every earlier
        # connection's final ACK has been processed
        reader, writer = await open_connection("192.0.2.2", 7, runtime=client)
        writer.write(b"y")
        writer.write_eof()
        assert await reader.read() == b"y"
        assert len(srv.transports) <= 1  # at most the last one, still in LAST_ACK
        srv.close()
        client.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))



# ------------------------------------------------------------- SYN cookies
def _cookie_wire(**kw):
    cfg = dict(timestamps=False, window_scaling=False, sack=False, max_syn_backlog=2, syncookies=1)
    cfg.update(kw)
    w = Wire(Config(**cfg))
    listener = w.stack.listen(80, w.now)
    for port in (30000, 30001):  # two spoofed SYNs fill the SYN queue
        assert w.send(Segment(port, 80, 1, 0, SYN, 65535))
    return w, listener


def test_a_full_syn_queue_answers_with_a_syn_cookie_and_the_final_ack_makes_the_connection():
    w, listener = _cookie_wire()
    pending = len(listener.pending)
    [synack] = w.send(Segment(40000, 80, 7000, 0, SYN, 65535, options=Options(mss=1400)))
    assert synack.flags == SYN | ACK and synack.ack == 7001
    assert len(listener.pending) == pending  # stateless: nothing was kept
    w.send(Segment(40000, 80, 7001, seq_add(synack.seq, 1), ACK, 65535, b"hello"))
    conn = listener.accept()
    assert conn is not None and conn.state is State.ESTABLISHED and conn.remote[1] == 40000
    assert conn.snd_mss == 1300  # the cookie's MSS table entry at or below the peer's 1400
    assert conn.receive(now=w.now) == b"hello"
    assert w.stack.counters["syn_cookies_sent"] == 1 and w.stack.counters["syn_cookies_accepted"] == 1


def test_a_forged_or_stale_cookie_makes_no_connection():
    w, listener = _cookie_wire()
    [synack] = w.send(Segment(40000, 80, 7000, 0, SYN, 65535))
    out = w.send(Segment(40000, 80, 7001, seq_add(synack.seq, 2), ACK, 65535))  # a guessed, wrong cookie
    assert [s.flags for s in out] == [RST] and listener.accept() is None
    w.now = 200.0  # more than two 64 s periods later: the cookie has expired
    out = w.send(Segment(40000, 80, 7001, seq_add(synack.seq, 1), ACK, 65535))
    assert [s.flags for s in out] == [RST] and listener.accept() is None


def test_an_ack_whose_cookie_counter_is_older_than_the_stack_is_answered_not_raised():
    """In a stack's first 64 s period (its counter is 0), an ACK whose cookie claims the period before
    (counter 31, age 1) once made the check hash counter -1 and raise out of the whole batch."""
    w, listener = _cookie_wire()
    assert w.now < 64.0
    w.send(Segment(40000, 80, 7000, 0, SYN, 65535))  # a cookie was sent lately: ACKs are checked
    out = w.send(Segment(40000, 80, 7001, (31 << 27) + 1, ACK, 65535))
    assert [s.flags for s in out] == [RST] and listener.accept() is None


def test_timestamps_carry_window_scale_and_sack_through_a_cookie():
    w, listener = _cookie_wire(timestamps=True, window_scaling=True, sack=True)
    syn_opts = Options(mss=1460, wscale=7, sack_permitted=True, ts=(1000, 0))
    [synack] = w.send(Segment(40000, 80, 7000, 0, SYN, 65535, options=syn_opts))
    assert synack.options.wscale is not None and synack.options.sack_permitted and synack.options.ts
    tsval = synack.options.ts[0]
    w.send(Segment(40000, 80, 7001, seq_add(synack.seq, 1), ACK, 100, options=Options(ts=(1001, tsval))))
    conn = listener.accept()
    assert conn is not None and conn.sack_ok and conn.ts_enabled
    assert conn.snd_wnd == 100 << 7  # the peer's window scale came back in the TSecr


def test_syncookies_2_answers_every_syn_with_a_cookie():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, syncookies=2))
    listener = w.stack.listen(80, w.now)
    [synack] = w.send(Segment(40000, 80, 7000, 0, SYN, 65535))
    assert not listener.pending
    w.send(Segment(40000, 80, 7001, seq_add(synack.seq, 1), ACK, 65535))
    assert listener.accept() is not None


def test_a_full_accept_queue_drops_the_final_ack_and_the_synack_is_sent_again():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, backlog=1))
    listener = w.stack.listen(80, w.now)
    w.handshake(40000)  # fills the accept queue
    assert w.send(Segment(40001, 80, 5000, 0, SYN, 65535)) == []  # as Linux: no room, SYN dropped
    listener.accept()
    [synack] = w.send(Segment(40001, 80, 5000, 0, SYN, 65535))
    w.handshake(40002)  # fills it again before 40001's final ACK
    assert w.send(Segment(40001, 80, 5001, seq_add(synack.seq, 1), ACK, 65535)) == []
    assert "accept_queue_full" in w.drops()
    w.now = 1.0  # the half-open connection's SYN,ACK timer: it tries again
    w.stack.handle_timer(w.now)
    assert [s.flags for s in w.replies()] == [SYN | ACK]


def test_abort_on_overflow_resets_the_final_acks_sender():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, backlog=1, abort_on_overflow=True))
    listener = w.stack.listen(80, w.now)
    [synack] = w.send(Segment(40001, 80, 5000, 0, SYN, 65535))
    w.handshake(40002)
    out = w.send(Segment(40001, 80, 5001, seq_add(synack.seq, 1), ACK, 65535))
    assert [s.flags & RST for s in out] == [RST]
    assert len(listener.accept_queue) == 1


def test_a_cookie_tsval_is_never_ahead_of_the_connections_clock():
    """The options in its low bits must not push the cookie's TSval past the connection's next
    one, or the peer's PAWS would drop our first data (as Linux's cookie_init_timestamp ensures)."""
    from tcpwave.core import syncookies

    for clock in range(1000, 1128):
        v = syncookies.options_tsval(clock, 14, True)
        assert (clock - v) & 0xFFFFFFFF < 64  # at or behind the clock, by less than 64 ms
        assert syncookies.options_from_tsecr(v) == (14, True)


def test_a_listener_that_sent_no_cookie_lately_takes_no_ack_as_one():
    """A valid cookie is honoured only within a cookie's lifetime of the last one sent (Linux
    cookie_v4_check returns early without a recent SYN queue overflow): otherwise any blind ACK
    to a listener is a 2^-24 guess at any time, not only during a flood."""
    from tcpwave.core import syncookies

    w, busy = _cookie_wire()
    quiet = w.stack.listen(81, w.now)  # never overflowed: it has sent no cookie
    local, remote = (ME, 81), (PEER, 40000)
    cookie = syncookies.make(w.stack._cookie_secret, w.now, local, remote, 7000, 1460)
    out = w.send(Segment(40000, 81, 7001, seq_add(cookie, 1), ACK, 65535))
    assert [s.flags for s in out] == [RST] and quiet.accept() is None
    # the same kind of ACK at the listener that did send a cookie a moment ago is one
    [synack] = w.send(Segment(40001, 80, 8000, 0, SYN, 65535))
    w.send(Segment(40001, 80, 8001, seq_add(synack.seq, 1), ACK, 65535))
    assert busy.accept() is not None


def test_a_closed_connection_is_let_go_at_once_not_at_its_old_timer_deadlines():
    """A connection reset with timers armed far ahead (here the SYN,ACK's retransmission, and an
    established one's keep-alive) must not be held by the timer queue until those deadlines."""
    import gc

    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, keepalive=True, keepalive_idle=7200))
    listener = w.stack.listen(80, w.now)
    refs = []
    for port, establish in ((40000, False), (40001, True)):
        [synack] = w.send(Segment(port, 80, 5000, 0, SYN, 65535))
        if establish:
            w.send(Segment(port, 80, 5001, seq_add(synack.seq, 1), ACK, 65535))
            conn = listener.accept()
        else:
            [conn] = list(listener.pending)
        assert conn.next_timer() is not None  # a timer is armed
        refs.append(conn.weak())
        w.send(Segment(port, 80, 5001, 0, RST, 0))  # the peer resets it
        assert conn.state is (State.CLOSED if establish else State.LISTEN)  # (SYN_RCVD goes back: RFC 9293)
        del conn
    w.stack.events()  # (the application has heard of the ends)
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert w.stack.next_timer() is None  # and nothing is left to fire


# ------------------------------------------------------------- a packet that raises
def _raising_batch(strict: bool):
    """A batch of two: an ACK for another worker's port, whose hand-over raises (standing in for any
    bug), then a SYN for our listener."""
    from tcpwave.wire.ip import build_ip
    from tcpwave.wire.tcp import build_tcp

    def hand_over(owner, packet, trusted):
        raise RuntimeError("hand-over failed")

    w = Wire()
    w.stack.strict = strict
    w.stack.listen(80, w.now)
    w.stack.share_ports(0, 2, hand_over)
    batch = [build_ip(PEER, ME, 6, build_tcp(seg, PEER, ME)) for seg in (
        Segment(40000, 49153, 1, 1, ACK, 65535),  # 49153 % 2 == 1: another worker's
        Segment(40001, 80, 7000, 0, SYN, 65535, options=Options(mss=1460)))]
    return w, batch


def test_a_packet_that_raises_is_dropped_as_internal_error_and_the_batch_goes_on():
    w, batch = _raising_batch(strict=False)
    w.stack.receive_packets(batch, w.now)
    [synack] = w.replies()
    assert synack.flags == SYN | ACK and synack.ack == 7001  # the rest of the batch was served
    [drop] = [e for e in w.sink.of_type("drop") if e["reason"] == "internal_error"]
    assert drop["error"] == "RuntimeError: hand-over failed"
    assert w.stack.counters["internal_error"] == 1


def test_strict_stacks_raise_what_a_packet_raised():
    w, batch = _raising_batch(strict=True)
    with pytest.raises(RuntimeError, match="hand-over failed"):
        w.stack.receive_packets(batch, w.now)


def test_the_runtime_says_in_one_line_that_a_packet_raised(monkeypatch):
    from tcpwave.aio import log

    lines: list[tuple[str, str]] = []
    monkeypatch.setattr(log, "say", lambda kind, text: lines.append((kind, text)) or True)
    w, batch = _raising_batch(strict=False)

    class Link:  # the runtime's link: a batch in by hand, what it sends kept
        def attach(self, callback):
            self.deliver = callback

        def detach(self):
            pass

        def send(self, packet, gso_size=0, partial=False):
            self.sent.append(packet)

    async def main():
        link = Link()
        link.sent = []
        rt = Runtime(w.stack, link)
        link.deliver(batch)
        rt.close()
        return link.sent

    assert len(asyncio.run(main())) == 1  # the SYN,ACK
    assert lines == [("internal", "1 packet(s) so far raised inside the stack and were dropped (a bug: please "
                                  "report it); the last: RuntimeError: hand-over failed")]
