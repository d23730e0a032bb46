"""tcpwave: a user-space TCP/IP stack that shows every handshake, wave and state change."""

__version__ = "0.1.0"
