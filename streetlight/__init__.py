"""Smart streetlight control platform: the shared domain (road registry, wire protocol, settings)."""

__version__ = "0.1.0"
