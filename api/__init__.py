"""FastAPI routes, auth and roles, audit, live stream, and the dashboard."""
