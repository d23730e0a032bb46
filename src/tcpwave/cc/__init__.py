"""Congestion control: one small interface, implementations picked by name from the registry."""

from .base import REGISTRY, CongestionControl, create, register
from . import bbr_lite as _bbr_lite  # noqa: F401  (registers "bbr-lite")
from . import reno as _reno  # noqa: F401  (registers "reno")

__all__ = ["REGISTRY", "CongestionControl", "create", "register"]
