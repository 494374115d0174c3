"""``streetlight serve --only ROLE``: which processes run which roles, and how each is started."""

from __future__ import annotations

import pytest

from runtime.roles import Proc, RoleError, city_plan, plan, serve_argv


@pytest.mark.parametrize(("only", "expected"), [
    ([], [Proc("core", ("gateway", "controller")), Proc("api", ("api",))]),
    (["gateway", "controller", "api"], [Proc("core", ("gateway", "controller")), Proc("api", ("api",))]),
    (["gateway", "controller"], [Proc("core", ("gateway", "controller"))]),
    (["gateway"], [Proc("gateway", ("gateway",))]),
    (["api"], [Proc("api", ("api",))]),
    (["api", "gateway"], [Proc("gateway", ("gateway",)), Proc("api", ("api",))]),
    (["controller"], [Proc("controller", ("controller",))]),
    (["controller", "api"], [Proc("controller", ("controller",)), Proc("api", ("api",))]),
])
def test_roles_make_processes(only: list[str], expected: list[Proc]) -> None:
    assert plan(only) == expected


def test_roles_that_cannot_run_are_refused_saying_why() -> None:
    with pytest.raises(RoleError, match="unknown role 'apis'"):
        plan(["apis"])
    with pytest.raises(RoleError, match="at least one process of each role"):
        city_plan(2, 0, 2, "sl")


def test_a_city_plan_runs_each_role_in_processes_of_its_own_with_fixed_client_ids() -> None:
    procs = city_plan(2, 2, 1, "streetlight-gateway")
    assert [(p.name, p.roles, p.client_id) for p in procs] == [
        ("gateway-1", ("gateway",), "streetlight-gateway-1"), ("gateway-2", ("gateway",), "streetlight-gateway-2"),
        ("controller-1", ("controller",), "streetlight-controller-1"),
        ("controller-2", ("controller",), "streetlight-controller-2"), ("api-1", ("api",), "streetlight-api-1")]
    gw = serve_argv(procs[1], port=8123, roads=["a", "b"], client_id="x", shared_group="gateways",
                    report_interval_s=10, reuse_port=True)
    assert gw[gw.index("--client-id") + 1] == "streetlight-gateway-2"  # a restart takes its MQTT session back
    assert "--port" not in gw and "--reuse-port" not in gw
    api = serve_argv(procs[-1], port=8123, roads=["a"], client_id="x", shared_group="gateways",
                     report_interval_s=10, reuse_port=True)
    assert api[api.index("--port") + 1] == "8123" and "--reuse-port" in api  # one port for every API process


def test_each_supervised_process_is_started_with_its_roles() -> None:
    core, api = plan([])
    argv = serve_argv(core, port=8123, roads=["nanhuan-1"], client_id="gw", shared_group=None, report_interval_s=10)
    assert argv[-8:] == ["--report-interval-s", "10", "--only", "gateway", "--only", "controller",
                         "--road", "nanhuan-1"]
    assert "--port" not in argv  # the API's port is the API process's alone
    argv = serve_argv(api, port=8123, roads=["nanhuan-1"], client_id="gw", shared_group="g", report_interval_s=10)
    assert argv[argv.index("--port") + 1] == "8123" and argv[argv.index("--only") + 1] == "api"
    assert argv[-2:] == ["--shared-group", "g"]


def test_the_api_socket_is_shared_by_port_and_answers_without_delay() -> None:
    import socket

    from runtime.serve import listening_socket

    a = listening_socket("127.0.0.1", 0, reuse_port=True)
    port = a.getsockname()[1]
    b = listening_socket("127.0.0.1", port, reuse_port=True)  # a second API process on the same port
    try:
        a.listen()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = a.accept()
        # accepted connections inherit it: without it each answer's second write waited 40 ms
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.close()
        client.close()
    finally:
        a.close()
        b.close()
