"""The pole <-> platform MQTT protocol (``docs/protocol.md``) in code."""

from .messages import (
    COMMAND_MODELS, EVENT_MODELS, EVENT_TYPES, MAX_PAYLOAD, TELEMETRY_FIELDS, Ack, Alert, Command, Config,
    DimCommand, DoorOpenEvent, DriverFaultEvent, Event, Fallback, Heartbeat, IdentifyCommand, LampFaultEvent,
    Message, PedestrianEvent, RebootEvent, ScheduleStep, State, Telemetry, TiltEvent, VehicleEvent,
)
from .parse import REASONS, loads_object, parse_ack, parse_alert, parse_command, parse_config, parse_event, \
    parse_heartbeat, parse_payload, parse_state, parse_status, parse_telemetry
from .topics import DOWNLINK_KINDS, POLE_KINDS, ROAD_KINDS, UPLINK_KINDS, Topic, parse_topic, pole_topic, road_topic, \
    shared, subscription

__all__ = [
    "COMMAND_MODELS", "DOWNLINK_KINDS", "EVENT_MODELS", "EVENT_TYPES", "MAX_PAYLOAD", "POLE_KINDS", "REASONS",
    "ROAD_KINDS", "TELEMETRY_FIELDS", "UPLINK_KINDS", "Ack", "Alert", "Command", "Config", "DimCommand",
    "DoorOpenEvent", "DriverFaultEvent", "Event", "Fallback", "Heartbeat", "IdentifyCommand", "LampFaultEvent",
    "Message", "PedestrianEvent", "RebootEvent", "ScheduleStep", "State", "Telemetry", "TiltEvent", "Topic",
    "VehicleEvent", "loads_object", "parse_ack", "parse_alert", "parse_command", "parse_config", "parse_event",
    "parse_heartbeat", "parse_payload", "parse_state", "parse_status", "parse_telemetry", "parse_topic",
    "pole_topic", "road_topic", "shared", "subscription",
]
