"""Window arithmetic shared by the connection's send and receive sides."""


def our_shift(cfg) -> int:
    """The window scale we offer: for the receive buffer (Linux), or for Config.maxsockbuf when set
    (FreeBSD scales for kern.ipc.maxsockbuf, the largest buffer a socket may get: 2 MiB gives 6)."""
    return window_shift_for(cfg.maxsockbuf or cfg.recv_buffer)


def window_shift_for(buffer_size: int) -> int:
    """Smallest window-scale shift that lets `buffer_size` be advertised (RFC 7323 §2.3)."""
    shift = 0
    while (buffer_size >> shift) > 0xFFFF and shift < 14:
        shift += 1
    return shift
