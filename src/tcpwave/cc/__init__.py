"""Congestion control: one small interface, implementations picked by name from the registry."""

from . import bbr_lite as _bbr_lite  # noqa: F401  (registers "bbr-lite")
from . import cubic as _cubic  # noqa: F401  (registers "cubic")
from . import reno as _reno  # noqa: F401  (registers "reno")
from .base import REGISTRY, CongestionControl, RateSample, create, register

__all__ = ["REGISTRY", "CongestionControl", "RateSample", "create", "register"]
