"""tcpwave: a user-space TCP/IP stack that shows every handshake, wave and state change."""

__version__ = "0.1.0"

_LAZY = {"open_connection": "tcpwave.aio", "start_server": "tcpwave.aio", "Network": "tcpwave.aio.blocking",
         "Stack": "tcpwave.stack", "Config": "tcpwave.core.config"}


def __getattr__(name):  # tcpwave.open_connection etc., imported on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tcpwave' has no attribute {name!r}")
