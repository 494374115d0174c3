"""The LwM2M objects this platform reads and writes, and how they map to the protocol's fields.

From the OMA LwM2M registry (uCIFI objects, BSD-3; IPSO 3311): 3416 Outdoor lamp controller,
3418 Electrical monitor, 3311 Light Control, and the Device object 3 (listed, never needed).
Only instance 0 is used: a pole here carries one lamp (docs/protocol.md, "LwM2M devices").
Device models are data: one table of resources, one of readings, one of fault flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["integer", "float", "boolean", "string", "time"]
Path = tuple[int, int, int]  # object, instance, resource

LAMP, ELECTRICAL, LIGHT_CONTROL, DEVICE = 3416, 3418, 3311, 3

# every resource the adapter decodes; a value of any other resource is counted (unknown_resource) and dropped
RESOURCES: dict[tuple[int, int], Kind] = {
    (LAMP, 1): "integer", (LAMP, 2): "integer", (LAMP, 3): "integer", (LAMP, 4): "integer",
    (LAMP, 5): "boolean", (LAMP, 7): "boolean", (LAMP, 9): "boolean", (LAMP, 10): "boolean",
    (LAMP, 11): "boolean", (LAMP, 12): "boolean",
    (LAMP, 44): "float", (LAMP, 45): "float", (LAMP, 46): "float", (LAMP, 47): "float", (LAMP, 5518): "time",
    (ELECTRICAL, 1): "float", (ELECTRICAL, 2): "float", (ELECTRICAL, 4): "float", (ELECTRICAL, 5): "float",
    (ELECTRICAL, 6): "float", (ELECTRICAL, 5518): "time",
    (LIGHT_CONTROL, 5850): "boolean", (LIGHT_CONTROL, 5851): "integer", (LIGHT_CONTROL, 5805): "float",
    (DEVICE, 0): "string", (DEVICE, 1): "string", (DEVICE, 2): "string", (DEVICE, 3): "string",
}


@dataclass(frozen=True, slots=True)
class Reading:
    """A resource that fills a telemetry field: ``value * scale``, preferred over lower ``rank``s."""

    field: str
    scale: float = 1.0
    rank: int = 0  # 0 wins over 1 when a device has both


READINGS: dict[Path, Reading] = {
    (LAMP, 0, 3): Reading("dim"),
    (LIGHT_CONTROL, 0, 5851): Reading("dim", rank=1),
    (ELECTRICAL, 0, 1): Reading("voltage_v"),
    (ELECTRICAL, 0, 2): Reading("current_a"),
    (ELECTRICAL, 0, 4): Reading("power_w"),
    (LAMP, 0, 46): Reading("power_w", rank=1),  # at the light source: no driver loss, so only a fallback
    (ELECTRICAL, 0, 5): Reading("pf"),
    (ELECTRICAL, 0, 6): Reading("energy_wh"),
    (LAMP, 0, 47): Reading("energy_wh", scale=1000.0, rank=1),  # kWh
    (LIGHT_CONTROL, 0, 5805): Reading("energy_wh", rank=2),
}
TIMESTAMPS: tuple[Path, ...] = ((ELECTRICAL, 0, 5518), (LAMP, 0, 5518))
ON_OFF: Path = (LIGHT_CONTROL, 0, 5850)  # off means dim 0 whatever the dimmer says


@dataclass(frozen=True, slots=True)
class Flag:
    """A failure flag of 3416: rising to true sends an event of ``event`` with ``code``."""

    event: str
    code: str


FLAGS: dict[Path, Flag] = {
    (LAMP, 0, 5): Flag("lamp_fault", "LWM2M_LAMP_FAILURE"),
    (LAMP, 0, 7): Flag("driver_fault", "LWM2M_CONTROL_GEAR_FAILURE"),
    (LAMP, 0, 9): Flag("driver_fault", "LWM2M_RELAY_FAILURE"),
    (LAMP, 0, 12): Flag("driver_fault", "LWM2M_CONTROL_GEAR_COMMUNICATION_FAILURE"),
    # no event type of the protocol carries these: stored as events of their own type; the
    # controller finds day burning and cycling from the readings, as for MQTT poles
    (LAMP, 0, 10): Flag("day_burner", "LWM2M_DAY_BURNER"),
    (LAMP, 0, 11): Flag("cycling_failure", "LWM2M_CYCLING_FAILURE"),
}

# the dim command: written here (the first the device registered), confirmed by the second
DIM_TARGETS: tuple[tuple[Path, Path], ...] = (
    ((LAMP, 0, 1), (LAMP, 0, 3)),
    ((LIGHT_CONTROL, 0, 5851), (LIGHT_CONTROL, 0, 5851)),
)

OBSERVED: tuple[Path, ...] = (*TIMESTAMPS, *READINGS, *FLAGS, ON_OFF)


def kind_of(path: Path) -> Kind | None:
    return RESOURCES.get((path[0], path[2]))


def path_str(path: tuple[int, ...]) -> str:
    return "/" + "/".join(str(p) for p in path)


def parse_path(text: str) -> tuple[int, ...]:
    """``/3416/0/3`` -> (3416, 0, 3); raises ValueError on anything else."""
    parts = [p for p in text.strip().strip("/").split("/") if p != ""]
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and len(p) <= 5 for p in parts):
        raise ValueError(f"not an LwM2M path: {text[:60]!r}")
    nums = tuple(int(p) for p in parts)
    if any(n > 65535 for n in nums):
        raise ValueError(f"LwM2M ids are 0 … 65535: {text[:60]!r}")
    return nums
