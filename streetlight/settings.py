"""One settings object for every command, read from ``STREETLIGHT_*`` environment variables.

Built in the entry point and passed down; nothing reads the environment at import time.
Command-line options override fields with :meth:`Settings.with_overrides`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # hide_input_in_errors: a malformed URL or password must not be echoed into a log or a terminal
    model_config = SettingsConfigDict(env_prefix="STREETLIGHT_", extra="ignore", frozen=True, hide_input_in_errors=True)

    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(None, description="CA certificate for an mqtts:// broker")
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "streetlight"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = Field(None, description="token for InfluxDB 2.x/3.x v1-compatibility auth")
    influx_writers: int = Field(1, ge=1, le=16, description="concurrent requests a large write batch is split into")
    pole_secret: SecretStr | None = Field(None, description="site secret from which each pole's broker password is derived")
    data_dir: Path = Path("./var")
    state_url: SecretStr | None = Field(None, description="operational state (faults, schedules, tokens, audit …) "
                                        "in PostgreSQL: postgresql://user:password@host:port/database; unset: SQLite "
                                        "files in data_dir (secret: it carries the password)")
    api_host: str = "127.0.0.1"
    # the control channel: API processes call the controller that holds a road's lease (docs/operations.md)
    control_host: str = Field("127.0.0.1", description="address the controller's control channel listens on: "
                              "loopback when API processes run on the same machine; a private network's address "
                              "(or 0.0.0.0 in a container) when they run elsewhere")
    control_port: int = Field(0, ge=0, le=65535, description="port of the control channel (0: any free one; the "
                              "channel file tells API processes which)")
    control_advertise: str | None = Field(None, description="host name or address API processes reach the control "
                                          "channel by, written to control-channel.json (a container's service "
                                          "name, say); unset: control_host, or this machine's host name when "
                                          "control_host is a wildcard address")
    api_port: int = Field(8000, ge=1, le=65535)
    roads: list[str] = Field(default_factory=lambda: ["nanhuan-1"], description="road ids or registry files served")
    log_level: str = "INFO"
    road_clock: Literal["auto", "wall", "devices"] = Field(
        "auto", description="road time: wall clock (a live road), poles' consensus (a replay), or auto (decided per road)")
    clock_tolerance_s: float = Field(
        120.0, gt=0, description="how far a pole's clock may be from road time before its readings are corrected")
    # the API's defences (docs/security.md)
    webhook_allow: list[str] = Field(default_factory=list, description="internal webhook targets allowed on purpose: "
                                     "host names, addresses or networks (e.g. [\"10.0.5.0/24\"]); all others inside "
                                     "the site are refused")
    api_max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body the API reads (413 above)")
    auth_failures_per_minute: int = Field(30, ge=1, description="failed authentications per client address and "
                                          "minute before that address is refused for a minute (429)")
    streams_per_token: int = Field(4, ge=1, description="live streams one token may hold open at once")
    audit_retention_days: float = Field(400.0, gt=0, description="audit rows older than this are deleted")
    audit_max_rows: int = Field(1_000_000, ge=1000, description="the audit table's size bound (oldest go first)")
    # LwM2M lamp controllers (docs/protocol.md "LwM2M devices", docs/operations.md)
    lwm2m_enabled: bool = Field(False, description="serve LwM2M lamp controllers (poles with an lwm2m_endpoint)")
    lwm2m_host: str = Field("127.0.0.1", description="UDP address of the LwM2M server: loopback or a private "
                            "network only, since this server has no DTLS")
    lwm2m_port: int = Field(5683, ge=1, le=65535, description="UDP port of the LwM2M server (CoAP)")
    lwm2m_lifetime_s: int = Field(86_400, ge=1, description="registration lifetime when a device gives none (lt)")
    lwm2m_pmin_s: int = Field(1, ge=0, description="observe: least seconds between two notifications")
    lwm2m_pmax_s: int = Field(10, ge=1, description="observe: most seconds without a notification; at most the "
                              "road's report interval, or a quiet lamp is taken for a silent one")
    lwm2m_request_timeout_s: float = Field(10.0, gt=0, description="how long a request to a device may take")
    lwm2m_queue_awake_s: float = Field(2.0, ge=0, description="queue mode: how long a device listens after it "
                                       "last spoke; writes after that wait for its next update")
    lwm2m_write_format: Literal["text", "tlv", "senml-json"] = Field("text", description="encoding of Writes")

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got {value!r}")
        return value

    @field_validator("influx_url")
    @classmethod
    def _check_influx_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {value!r}")
        return value.rstrip("/")

    @field_validator("state_url")
    @classmethod
    def _check_state_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg") or not parts.hostname:
            raise ValueError(f"expected postgresql://user:password@host:port/database, got {parts.scheme}://…")
        return value

    @property
    def mqtt_host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def mqtt_port(self) -> int:
        parts = urlsplit(self.mqtt_url)
        if parts.port:
            return parts.port
        return 8883 if parts.scheme in ("mqtts", "ssl") else 1883

    @property
    def mqtt_tls(self) -> bool:
        return urlsplit(self.mqtt_url).scheme in ("mqtts", "ssl")

    @property
    def control_address(self) -> str:
        """The host name API processes use to reach this process's control channel."""
        if self.control_advertise:
            return self.control_advertise
        if self.control_host in ("0.0.0.0", "::", ""):
            import socket

            return socket.gethostname()  # a wildcard is no address to call
        return self.control_host

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored (option not given)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        return type(self).model_validate({**self.model_dump(), **given})

    def state_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def state_location(self, file_name: str) -> str | Path:
        """Where operational state lives: the PostgreSQL URL when one is set, else ``file_name`` in data_dir."""
        return self.state_url.get_secret_value() if self.state_url else self.state_dir() / file_name
