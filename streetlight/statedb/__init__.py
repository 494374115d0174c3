"""The operational state's database: its schema, its migrations, and how it is opened.

``runtime/state.py`` (the controller's state) and ``api/store.py`` (the API's) both keep their
rows here; see :mod:`streetlight.statedb.database`.
"""

from .database import Database, StateDatabaseError, sqlalchemy_url, upsert

__all__ = ["Database", "StateDatabaseError", "sqlalchemy_url", "upsert"]
