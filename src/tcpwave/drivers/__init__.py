"""Drivers own devices and clocks; the core never does."""
