"""Judges of a simulated run that read its ground truth (``simulators.truth``), never the platform's beliefs."""

from .compliance import ClassTable, ComplianceReport, judge_compliance, load_table

__all__ = ["ClassTable", "ComplianceReport", "judge_compliance", "load_table"]
