"""Taps on a link: every packet in and out also goes to capture writers (pcap, pcapng, event
annotations), on the clock the driver gives it. A failing tap is disabled, never raised into the stack."""


class Tapped:
    """A link whose every packet in and out also goes to taps: callables (t, packet), optionally with
    a flush() called once the stack has processed an incoming batch and sent what it caused, and a
    sync() that hands what is buffered to the file (at least once a second, see `start_syncing`).

    A tap that raises (a full disk) is disabled (its disable() called, if it has one) and reported
    once (`on_error`); the packets go on to the stack and the device all the same."""

    SYNC_EVERY = 1.0  # seconds

    def __init__(self, link, taps, on_error=None):
        self.link, self.taps = link, list(taps)
        self.clock = lambda: 0.0
        self.on_error = on_error
        self._timer = None

    def attach(self, callback):
        def tap_in(packets, trusted=None):
            self._feed(packets)
            callback(packets, trusted)
            self._each("flush")

        self.link.attach(tap_in)

    def detach(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.detach()

    def send(self, packet, gso_size=0, partial=False):
        self._feed((packet,))
        self.link.send(packet, gso_size, partial)
        self._each("flush")

    def start_syncing(self, loop) -> None:
        """sync() every tap each SYNC_EVERY seconds while attached: a capture can be read as it grows."""
        def tick():
            self._each("sync")
            self._timer = loop.call_later(self.SYNC_EVERY, tick)

        self._timer = loop.call_later(self.SYNC_EVERY, tick)

    def _feed(self, packets) -> None:
        t = self.clock()
        for tap in self.taps:
            try:
                for p in packets:
                    tap(t, p)
            except Exception as e:  # noqa: BLE001 (a tap's failure never reaches the stack or the device)
                self._disable(tap, e)

    def _each(self, method: str) -> None:
        for tap in self.taps:
            call = getattr(tap, method, None)
            if call is not None:
                try:
                    call()
                except Exception as e:  # noqa: BLE001 (as in _feed)
                    self._disable(tap, e)

    def _disable(self, tap, error: Exception) -> None:
        self.taps = [t for t in self.taps if t is not tap]  # (a loop under way goes on over the old list)
        disable = getattr(tap, "disable", None)
        if disable is not None:
            disable()
        if self.on_error is not None:
            try:
                self.on_error(tap, error)
            except Exception:  # noqa: BLE001, S110 (nothing left to tell it to)
                pass
