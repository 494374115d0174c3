"""Writes controller-v0.sqlite3 and api-v0.sqlite3 as the release before migrations wrote them.

Run with that release's tree first on the path (git archive c899d91), from this folder:
``PYTHONPATH=<that tree> python make_v0_files.py``. The files are kept in the repository so that
tests/state/test_migrations.py upgrades real files of that release, not a copy of its schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from api.audit import AuditLog
from api.auth import TokenStore
from api.notify import Notifier
from api.store import Store
from controller.faults import Fault
from controller.overrides import Override
from runtime.state import ControllerStore

HERE = Path(__file__).parent
T0 = 1_795_000_000_000


def controller_file(path: Path) -> None:
    store = ControllerStore(path)
    for seq, state in ((7, "open"), (8, "open")):
        store.save_fault(Fault(fault_id=f"F-{seq:06d}", type="lamp_failure", severity="major", state=state,
                               road="nanhuan-1", pole=f"NH-0{seq}0", span=None, segment="S1", side="east",
                               chainage_m=100.0 * seq, lat=31.7, lon=119.5, feeder="C1-L1", first_seen_ts=T0,
                               last_seen_ts=T0, summary=f"lamp out at NH-0{seq}0", evidence={"power_w": 0.0}))
    store.acknowledge("F-000008", "crew-1", T0 + 60_000, "on our way")
    store.save_override("nanhuan-1", Override("o1", "segment", "S1", 80.0, T0, None, actor="op-1"))
    store.save_schedule("nanhuan-1", [{"id": "d", "kind": "default", "name": "Night"}], 3.0, "planner", T0)
    store.save_schedule("nanhuan-1", [{"id": "d", "kind": "default", "name": "Late"}], 4.0, "planner", T0 + 1)
    store.save_energy("nanhuan-1", T0, {"kwh": 12.5})
    store.close()


def api_file(path: Path) -> str:
    store = Store(path)
    tokens = TokenStore(store)
    token, _ = tokens.create("operator", "night shift")
    AuditLog(store).record(actor="night shift (operator)", role="operator", token_id=None, action="dim",
                           target="NH-047", result="ok", params={"level": 35})
    notifier = Notifier(store, resolve=lambda host, port: ["93.184.216.34"])
    notifier.add("crew", "json", "https://hooks.example.com/x")
    store.close()
    return token


if __name__ == "__main__":
    for name in ("controller-v0.sqlite3", "api-v0.sqlite3"):
        for suffix in ("", "-wal", "-shm"):
            (HERE / (name + suffix)).unlink(missing_ok=True)
    controller_file(HERE / "controller-v0.sqlite3")
    token = api_file(HERE / "api-v0.sqlite3")
    (HERE / "api-v0.token").write_text(token + "\n")
    for name in ("controller-v0.sqlite3", "api-v0.sqlite3"):  # one file each, no -wal beside it
        db = sqlite3.connect(HERE / name)
        db.execute("PRAGMA journal_mode=DELETE")
        db.close()
