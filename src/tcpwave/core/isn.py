"""Initial sequence numbers per RFC 9293 §3.4.1 and RFC 6528: ISN = M + F(4-tuple, secret).

M is a 4-microsecond clock taken from the injected `now`; F is a keyed BLAKE2s of
the connection identifiers. The key comes from the stack's seeded RNG, so a
seeded run is reproducible while ISNs stay unguessable to anyone without the seed.
"""

import hashlib

from ..seq import MASK


class IsnGenerator:
    def __init__(self, secret: bytes):
        self._secret = secret[:32]

    def iss(self, now: float, local_addr, local_port: int, remote_addr, remote_port: int) -> int:
        key = b"%s|%d|%s|%d" % (str(local_addr).encode(), local_port, str(remote_addr).encode(), remote_port)
        f = int.from_bytes(hashlib.blake2s(key, key=self._secret, digest_size=4).digest(), "big")
        m = int(now * 250_000)  # one tick every 4 microseconds
        return (m + f) & MASK
