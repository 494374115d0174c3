"""Pole simulators: the whole road stepped on numpy arrays, speaking the device protocol.

    traffic, daylight, electrical, schedule   the models (arrays in, arrays out; no MQTT)
    engine      RoadSim: every pole's device state and physics, stepped together
    faults      fault injection (lamp, driver, cable cut, comm, leakage, relay, sag, detector)
    device      commands, acks, configs, heartbeats -> the engine
    encode      protocol payloads and seq, in a deterministic order
    rawmqtt     a small bulk QoS 1 MQTT client; transport: per-pole and concentrator connections
    runner      Simulation (step by hand), run_simulation, SimulationThread
    scenario    YAML scenarios (shipped in scenarios/), errors with file and line
    recording, replay, expect, bench, pytest_plugin
"""
