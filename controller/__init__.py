"""Decisions without I/O: schedules, adaptive dimming, overrides, faults, energy."""
