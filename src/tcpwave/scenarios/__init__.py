"""The demo scenarios: a client and a server stack on the simulated network, registered by name."""

from .registry import SCENARIOS, Result, Scenario, configured, run_lossy

__all__ = ["SCENARIOS", "Result", "Scenario", "configured", "run_lossy"]
