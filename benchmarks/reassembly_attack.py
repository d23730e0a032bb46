"""What one-byte out-of-order segments at alternate offsets cost the receive buffer (the review's
attack), per segment and in memory, as the number of held pieces grows.

    .venv/bin/python benchmarks/reassembly_attack.py

Prints figures; asserts no speed.
"""

import time

from tcpwave.core.recv_buffer import ReceiveBuffer


def main() -> None:
    for held in (2_000, 8_000, 131_000):
        rb = ReceiveBuffer(256 * 1024 if held == 131_000 else 1 << 30)
        for i in range(held):
            rb.insert(1 + 2 * i, b"x")
        t = time.perf_counter()
        for i in range(held, held + 2_000):
            rb.insert(1 + 2 * i, b"x")
        dt = (time.perf_counter() - t) / 2_000
        print(f"{held:7d} pieces sent: {dt * 1e6:7.1f} us per segment, {len(rb.ranges()):6d} held, "
              f"{rb.charged:9d} bytes charged (capacity {rb.capacity})")


if __name__ == "__main__":
    main()
