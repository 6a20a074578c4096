"""Every target conforms to jobs/backend.py's contract, and a refused request reads the same on both."""

from __future__ import annotations

import inspect
import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.core.exceptions import ARMErrorFormat

from jobs import cli
from jobs.azure.backend import AzureBackend
from jobs.azure.dry_run import DryRunBackend
from jobs.backend import Backend, LocalEndpointControl, RequestRefused
from jobs.local import inference_server
from jobs.local.backend import LocalBackend

TARGETS = [LocalBackend, AzureBackend, DryRunBackend]


def contract(protocol: type) -> list[str]:
    """The methods a Protocol declares itself (not those of Protocol or object)."""
    return [name for name, member in vars(protocol).items() if inspect.isfunction(member) and not name.startswith("_")]


def check_conforms(cls: type, protocol: type) -> list[str]:
    """How `cls` drifts from `protocol`: a missing method, a parameter that differs in name, kind or type, a
    default the contract has and the class drops, a return type that is not the contract's (or narrower)."""
    drifts = []
    for name in contract(protocol):
        if not inspect.isfunction(getattr(cls, name, None)):
            drifts.append(f"{cls.__name__}.{name} is missing")
            continue
        want, have = inspect.signature(getattr(protocol, name)), inspect.signature(getattr(cls, name))
        want_types = typing.get_type_hints(getattr(protocol, name))
        have_types = typing.get_type_hints(getattr(cls, name))
        wanted, had = list(want.parameters.values()), list(have.parameters.values())
        if [(p.name, p.kind) for p in wanted] != [(p.name, p.kind) for p in had]:
            drifts.append(f"{cls.__name__}.{name}{have} has other parameters than the contract's {want}")
            continue
        for p, q in zip(wanted, had, strict=True):
            if want_types.get(p.name) != have_types.get(q.name):
                drifts.append(
                    f"{cls.__name__}.{name}: {p.name} is {have_types.get(q.name)}, the contract says "
                    f"{want_types.get(p.name)}"
                )
            if p.default is not inspect.Parameter.empty and q.default != p.default:
                drifts.append(f"{cls.__name__}.{name}: {p.name}'s default differs from the contract's")
        wanted_return, returned = want_types.get("return"), have_types.get("return")
        if (
            wanted_return not in (object, Any)
            and returned != wanted_return
            and not (
                isinstance(returned, type) and isinstance(wanted_return, type) and issubclass(returned, wanted_return)
            )
        ):
            drifts.append(f"{cls.__name__}.{name} returns {returned}, the contract says {wanted_return}")
    return drifts


@pytest.mark.parametrize("target", TARGETS, ids=lambda cls: cls.__name__)
def test_each_target_conforms_to_the_backend_contract(target):
    assert check_conforms(target, Backend) == []


def test_the_conformance_check_catches_a_drifting_backend():
    class Drifted(LocalBackend):
        def register(self, run: str | None, min_auc: float) -> str:  # min_auc no longer optional
            return "1"

        def deploy(self, version: str | None) -> str:  # options dropped
            return "1"

    del_invoke = type(
        "NoInvoke", (), {name: getattr(LocalBackend, name) for name in contract(Backend) if name != "invoke"}
    )
    drifts = check_conforms(Drifted, Backend) + check_conforms(del_invoke, Backend)
    assert any("register: min_auc" in d for d in drifts)
    assert any("Drifted.deploy" in d and "other parameters" in d for d in drifts)
    assert "NoInvoke.invoke is missing" in drifts


def test_only_the_local_target_has_endpoint_process_control():
    assert check_conforms(LocalBackend, LocalEndpointControl) == []
    assert issubclass(LocalBackend, LocalEndpointControl)
    assert not issubclass(AzureBackend, LocalEndpointControl)
    assert not issubclass(DryRunBackend, LocalEndpointControl)


def test_make_backend_and_from_args_return_the_contract_type():
    assert typing.get_type_hints(cli.make_backend)["return"] is Backend
    assert typing.get_type_hints(AzureBackend.from_args)["return"] is Backend


# -- a refused request: the same JobsError, the same output, on both targets --------------------------------

REFUSAL = {
    "message": "invalid request: 2 problem(s)",
    "errors": [
        {"record": 0, "field": "age", "problem": "131 is outside the possible range 0 to 130 years"},
        {"record": 0, "field": "smoking", "problem": "expected true/false, got the string 'often'"},
    ],
}


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(REFUSAL).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_server():
    server = HTTPServer(("127.0.0.1", inference_server.free_port()), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Response:
    """An HTTP response as azure-core hands it to HttpResponseError (status, reason, headers, text())."""

    status_code, reason, headers, request = 400, "Bad Request", {}, None

    def text(self, encoding: str | None = None) -> str:
        return json.dumps(REFUSAL)


def sdk_refusal() -> HttpResponseError:
    # As azure-ai-ml 1.35.2 raises it for a 4xx from invoke (_utils/_endpoint_utils.py validate_response):
    # the message is the body's error.message, absent in our body, so the response object stands in for it.
    response = _Response()
    return HttpResponseError(response=response, message=response, error_format=ARMErrorFormat)


def invoke_refused(argv: list[str], capsys) -> tuple[str, str]:
    code = cli.main(["invoke", "--set", "age=131", "--set", "smoking=often", *argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    return out, err


def test_a_refused_request_is_the_same_error_and_output_on_both_targets(refusing_server, tmp_path, monkeypatch, capsys):
    from jobs.local.endpoint import LocalEndpoint, post_json
    from tests.fakes import FakeMLClient, FakeSession

    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / ".local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(LocalEndpoint, "invoke", lambda self, payload: post_json(refusing_server + "/score", payload))
    local_out, local_err = invoke_refused([], capsys)

    session = FakeSession(FakeMLClient(endpoint_name="hf-dev-x"))
    session.ml.failures["online_endpoints.invoke"] = [sdk_refusal()]
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-0000-0000-0000-000000000001",
                "resource_group": "r",
                "workspace_name": "w",
                "endpoint_name": "hf-dev-x",
            }
        )
    )
    azure_out, azure_err = invoke_refused(["--target", "azure", "--outputs", str(outputs)], capsys)

    assert local_out == azure_out
    assert json.loads(local_out) == {"status": 400, **REFUSAL}
    assert local_err == azure_err
    assert local_err.splitlines() == [
        "error: the endpoint refused the request with 400: invalid request: 2 problem(s)",
        "  - record 0, field age: 131 is outside the possible range 0 to 130 years",
        "  - record 0, field smoking: expected true/false, got the string 'often'",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "no"}, "the endpoint refused the request with 404: no"),
        ("<html>Not Found</html>", "the endpoint refused the request with 404: <html>Not Found</html>"),
        (None, "the endpoint refused the request with 404: no reason given"),
        (
            {"error": {"code": "NotFound", "message": "no deployment takes traffic"}},
            "the endpoint refused the request with 404: no deployment takes traffic",
        ),
        ({"errors": ["free text"] * 12}, "  - free text\n  - and 2 more (all in the body above)"),
    ],
)
def test_a_refusal_of_any_shape_is_a_clear_message(body, message):
    refusal = RequestRefused(404, body)
    assert message in str(refusal)
    assert json.loads(refusal.body_json())["status"] == 404
