"""Taps on a link: every packet in and out also goes to capture writers (pcap, pcapng, event
annotations), on the clock of the event log."""


class Tapped:
    """A link whose every packet in and out also goes to taps: callables (t, packet), optionally with
    a flush() called once the stack has processed an incoming batch and sent what it caused."""

    def __init__(self, link, taps):
        self.link, self.taps = link, taps
        self.clock = lambda: 0.0

    def attach(self, callback):
        def tap_in(packets, trusted=None):
            t = self.clock()
            for tap in self.taps:
                for p in packets:
                    tap(t, p)
            callback(packets, trusted)
            self._flush()

        self.link.attach(tap_in)

    def detach(self):
        self.link.detach()

    def send(self, packet, gso_size=0, partial=False):
        t = self.clock()
        for tap in self.taps:
            tap(t, packet)
        self.link.send(packet, gso_size, partial)
        self._flush()

    def _flush(self):
        for tap in self.taps:
            flush = getattr(tap, "flush", None)
            if flush is not None:
                flush()
