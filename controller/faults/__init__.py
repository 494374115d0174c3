"""Fault detection and localization: per-pole rules, feeder topology, lifecycle."""

from .book import FaultBook
from .model import FAULT_TYPES, Fault, Finding, fault_key

__all__ = ["FAULT_TYPES", "Fault", "FaultBook", "Finding", "fault_key"]
