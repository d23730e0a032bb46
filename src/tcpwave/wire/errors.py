"""Why a packet was dropped while parsing. Peer input never raises past the stack."""


class MalformedPacket(Exception):
    """Raised by parsers; the stack catches it and drops the packet with `reason`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
