"""One entry of the script's descriptor table: a socket, its options and what it is bound to (a
connection or a listener). The table (sockets.py) and the I/O calls (iocalls.py) both read it."""

import dataclasses

from ..core.config import Config
from ..core.connection import Connection
from ..stack import Listener


@dataclasses.dataclass
class Socket:
    fd: int
    config: Config
    nonblocking: bool = False
    port: int | None = None
    conn: Connection | None = None
    listener: Listener | None = None
    linger_zero: bool = False
    error_reported: bool = False
    shut_rd: bool = False
    shut_wr: bool = False
