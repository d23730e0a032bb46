"""The event log's extra records: timers armed, fired and cancelled, RTT samples, cwnd/ssthresh
changes and window changes, each consistent with the segments and states around it."""

from tcpwave.core.config import Config
from tcpwave.scenarios import SCENARIOS, run_lossy


def _of(events, type, host=None):
    return [e for e in events if e["type"] == type and (host is None or e["host"] == host)]


def test_every_fired_or_cancelled_timer_was_armed_first_and_fires_at_its_deadline():
    events = run_lossy(3, size=200_000, loss=0.05).events
    armed: dict[tuple, float] = {}
    fired = cancelled = 0
    for e in events:
        if e["type"] != "timer" or e["action"] == "give_up":
            continue
        key = (e["host"], e["conn"], e["name"])
        if e["action"] == "arm":
            assert abs(e["at"] - (e["t"] + e["delay"])) < 1e-6
            armed[key] = e["at"]
        elif e["action"] == "fire":
            assert key in armed, f"{key} fired but was never armed"
            assert abs(armed.pop(key) - e["t"]) < 1e-6  # fires at the deadline it was armed for
            fired += 1
        elif e["action"] == "cancel":
            assert armed.pop(key, None) is not None, f"{key} cancelled but not armed"
            cancelled += 1
    assert fired and cancelled
    names = {e["name"] for e in _of(events, "timer") if e["action"] == "fire"}
    assert names & {"retransmit", "tlp", "rack_reorder"}  # 5% loss: loss timers fired


def test_rtt_samples_follow_rfc_6298_and_match_the_link():
    res = SCENARIOS["handshake"].run(1, None, [])
    samples = _of(res.events, "rtt")
    assert samples
    cfg = Config()
    first = samples[0]
    assert first["srtt"] == first["sample"] and abs(first["rttvar"] - first["sample"] / 2) < 1e-9  # (2.2)
    for s in samples:
        assert 0.015 < s["sample"] < 0.02 + cfg.delayed_ack + 0.01  # 10 ms each way, and an ACK may wait 40 ms
        assert s["rto"] >= cfg.rto_min


def test_cwnd_grows_in_slow_start_and_is_cut_by_a_loss():
    events = run_lossy(3, size=300_000, loss=0.03).events
    conn = next(e["conn"] for e in _of(events, "cc", "client"))
    cc = [e for e in _of(events, "cc", "client") if e["conn"] == conn]
    assert cc[1]["cwnd"] > cc[0]["cwnd"]  # slow start
    cuts = [b for a, b in zip(cc, cc[1:], strict=False) if b["ssthresh"] < a["ssthresh"]]
    assert cuts and all(c["ssthresh"] < 1 << 30 for c in cuts)
    assert all(e["cwnd"] > 0 and e["flight"] >= 0 for e in cc)


def test_window_changes_are_reported_when_the_peer_offers_a_new_window():
    events = run_lossy(3, size=100_000, loss=0.0).events
    for host in ("client", "server"):
        windows = _of(events, "window", host)
        assert windows
        peer = "server" if host == "client" else "client"
        offered = {e["win"] for e in _of(events, "send", peer)}
        # every window this side learned is one the peer put in a segment (scaled or not)
        scales = [1 << s for s in range(15)]
        learned = [w for w in windows if w["snd_wnd"]]  # SND.WND is 0 until the first segment arrives
        assert learned and all(any(w["snd_wnd"] == o * k for o in offered for k in scales) for w in learned)
        assert all(w["rcv_wnd"] > 0 for w in windows)


def test_rtt_is_timed_to_the_microsecond_on_a_sub_millisecond_path():
    """Samples come from when the acknowledged segments were sent (as Linux's tcp_ack_update_rtt
    prefers), not from TSecr's milliseconds: on a 0.3 ms path they were all 0 or 1 ms, and the
    minimum RTT RACK's reordering window is made of was 0."""
    from tcpwave.core import events as ev
    from tcpwave.core.trace import Tracer
    from tcpwave.sim import LinkParams, Simulator

    events: list[dict] = []
    sim = Simulator(seed=3, tracer=Tracer(events.append))
    cfg = Config(timestamps=True)
    client = sim.add_host("client", ["192.0.2.1"], config=cfg)
    server = sim.add_host("server", ["192.0.2.2"], config=cfg)
    sim.link(client, server, LinkParams(latency=0.00015))
    listener = server.stack.listen(80, sim.now)

    def on_server(host, conn, event):
        if isinstance(event, ev.Connected):
            listener.accept()
        elif isinstance(event, ev.DataReadable):
            conn.receive(now=sim.now)

    def on_client(host, conn, event):
        if isinstance(event, ev.Connected):
            conn.send(b"x" * 200_000, sim.now)

    server.on_event = on_server
    client.on_event = on_client
    client.stack.connect("192.0.2.2", 80, sim.now)
    for host in (client, server):
        host.pump()
    sim.run(until=2.0)
    samples = [e["sample"] for e in events if e["type"] == "rtt" and e["host"] == "client"]
    assert len(samples) > 10
    assert min(samples) >= 0.0003 - 1e-9  # never less than the path's round trip (not 0)
    # to the microsecond: most samples are not whole milliseconds (TSecr's are)
    assert sum(1 for s in samples if abs(s * 1000 - round(s * 1000)) > 1e-6) > len(samples) // 2
