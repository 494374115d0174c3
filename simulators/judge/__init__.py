"""Judges of a simulated run: they read its ground truth (``simulators.truth``) and what the platform
published, never the platform's beliefs."""

from .compliance import ClassTable, ComplianceReport, judge_compliance, load_table
from .faults import FalseAlarm, Opening, Row, Verdict, format_table, judge_faults, openings, timeline_of

__all__ = ["ClassTable", "ComplianceReport", "FalseAlarm", "Opening", "Row", "Verdict", "format_table",
           "judge_compliance", "judge_faults", "load_table", "openings", "timeline_of"]
