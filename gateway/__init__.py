"""The MQTT edge: ingest, pole twins, command dispatch, config and heartbeat."""
