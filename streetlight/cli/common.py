"""What every command shares: the settings built from environment plus global options."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import typer
from pydantic import ValidationError

from ..settings import Settings


@dataclass
class _State:
    overrides: dict[str, Any] = field(default_factory=dict)


state = _State()


def settings(**overrides: Any) -> Settings:
    """Settings from ``STREETLIGHT_*``, then global options, then this command's options."""
    try:
        base = Settings()
        s = base.with_overrides(**state.overrides).with_overrides(**overrides)
    except ValidationError as err:
        lines = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        typer.secho(f"error: bad setting: {lines}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # one line per InfluxDB write would drown the log
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    return s
