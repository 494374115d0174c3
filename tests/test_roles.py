"""``streetlight serve --only ROLE``: which processes run which roles, and how each is started."""

from __future__ import annotations

import pytest

from runtime.roles import Proc, RoleError, plan, serve_argv


@pytest.mark.parametrize(("only", "expected"), [
    ([], [Proc("core", ("gateway", "controller")), Proc("api", ("api",))]),
    (["gateway", "controller", "api"], [Proc("core", ("gateway", "controller")), Proc("api", ("api",))]),
    (["gateway", "controller"], [Proc("core", ("gateway", "controller"))]),
    (["gateway"], [Proc("gateway", ("gateway",))]),
    (["api"], [Proc("api", ("api",))]),
    (["api", "gateway"], [Proc("gateway", ("gateway",)), Proc("api", ("api",))]),
])
def test_roles_make_processes(only: list[str], expected: list[Proc]) -> None:
    assert plan(only) == expected


@pytest.mark.parametrize(("only", "says"), [(["controller"], "--only gateway --only controller"),
                                            (["apis"], "unknown role 'apis'")])
def test_roles_that_cannot_run_are_refused_saying_why(only: list[str], says: str) -> None:
    with pytest.raises(RoleError, match=says):
        plan(only)


def test_each_supervised_process_is_started_with_its_roles() -> None:
    core, api = plan([])
    argv = serve_argv(core, port=8123, roads=["nanhuan-1"], client_id="gw", shared_group=None, report_interval_s=10)
    assert argv[-8:] == ["--report-interval-s", "10", "--only", "gateway", "--only", "controller",
                         "--road", "nanhuan-1"]
    assert "--port" not in argv  # the API's port is the API process's alone
    argv = serve_argv(api, port=8123, roads=["nanhuan-1"], client_id="gw", shared_group="g", report_interval_s=10)
    assert argv[argv.index("--port") + 1] == "8123" and argv[argv.index("--only") + 1] == "api"
    assert argv[-2:] == ["--shared-group", "g"]
