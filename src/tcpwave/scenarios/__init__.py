"""The demo scenarios: a client and a server stack on the simulated network, registered by name.

One module per family (lifecycle, loss, whatifs, profiles); a new scenario is a function decorated with
@scenario(name, summary) in one of them, or a new module imported here. `tcpwave demo --list` lists
them in import order."""

from . import lifecycle, loss, profiles, whatifs, whatifs_abrupt  # noqa: F401 (registers their scenarios)
from .loss import run_lossy
from .registry import SCENARIOS, Result, Scenario, configured

__all__ = ["SCENARIOS", "Result", "Scenario", "configured", "run_lossy"]
