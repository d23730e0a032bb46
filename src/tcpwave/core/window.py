"""Window arithmetic shared by the connection's send and receive sides."""


def window_shift_for(buffer_size: int) -> int:
    """Smallest window-scale shift that lets `buffer_size` be advertised (RFC 7323 §2.3)."""
    shift = 0
    while (buffer_size >> shift) > 0xFFFF and shift < 14:
        shift += 1
    return shift
