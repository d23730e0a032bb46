"""The recovery state Linux reports as tcpi_ca_state: set by recovery.py, read by the sender (how
much to send while recovering) and by tcp_info. Its own module so both reach it downward."""

import enum
from typing import Final


class CaState(enum.StrEnum):
    OPEN = "open"
    DISORDER = "disorder"
    CWR = "cwr"
    RECOVERY = "recovery"
    LOSS = "loss"


CA_STATE_NUMBER: Final = {CaState.OPEN: 0, CaState.DISORDER: 1, CaState.CWR: 2, CaState.RECOVERY: 3, CaState.LOSS: 4}
"""The values Linux's tcpi_ca_state uses (TCP_CA_Open = 0, ... TCP_CA_Loss = 4)."""
