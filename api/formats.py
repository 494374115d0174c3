"""Alert message bodies for each kind of webhook (generic JSON, DingTalk robot, WeCom robot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streetlight.registry import format_chainage

SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
SIDE = {"N": "north", "S": "south", "E": "east", "W": "west"}
STATE_WORD = {"open": "OPEN", "acknowledged": "ACKNOWLEDGED", "resolved": "RESOLVED"}


def location(fault: dict[str, Any]) -> str:
    """Where a crew goes, in words: segment, side, chainage, pole or span."""
    parts = []
    if fault.get("segment"):
        parts.append(f"segment {fault['segment']}")
    if fault.get("side"):
        parts.append(f"{SIDE.get(fault['side'], fault['side'])} side")
    if fault.get("chainage_m") is not None:
        parts.append(format_chainage(float(fault["chainage_m"])))
    if fault.get("span"):
        a, b = fault["span"]
        parts.append(f"between poles {a} and {b}")
    elif fault.get("pole"):
        parts.append(f"pole {fault['pole']}" + (f" port {fault['equipment']}" if fault.get("equipment") else ""))
    if fault.get("feeder"):
        parts.append(f"feeder {fault['feeder']}")
    if fault.get("cabinet") and not fault.get("pole") and not fault.get("span"):
        parts.append(f"cabinet {fault['cabinet']}")
    return ", ".join(parts) or f"road {fault.get('road', '?')}"


def _lines(fault: dict[str, Any]) -> list[str]:
    lines = [
        f"**[{fault.get('severity', '?').upper()}] {fault.get('type', 'fault').replace('_', ' ')} "
        f"— {STATE_WORD.get(fault.get('state', ''), fault.get('state', ''))}**",
        f"{fault.get('summary', '')}",
        f"Where: {location(fault)}",
        f"Fault: {fault.get('fault_id', '?')} on {fault.get('road', '?')}",
    ]
    if fault.get("lat") is not None and fault.get("lon") is not None:
        lines.append(f"GPS: {fault['lat']:.6f}, {fault['lon']:.6f}")
    return lines


def generic(fault: dict[str, Any]) -> dict[str, Any]:
    return {"event": "fault", "text": "\n".join(line.replace("**", "") for line in _lines(fault)),
            "location": location(fault), "fault": fault}


def dingtalk(fault: dict[str, Any]) -> dict[str, Any]:
    title = f"{fault.get('type', 'fault')} {fault.get('fault_id', '')}"
    return {"msgtype": "markdown", "markdown": {"title": title, "text": "\n\n".join(_lines(fault))}}


def wecom(fault: dict[str, Any]) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": "\n".join(_lines(fault))}}


FORMATS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json": generic, "dingtalk": dingtalk, "wecom": wecom,
}
