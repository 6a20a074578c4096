"""Fixtures: the fake service on requests' last step, a dummy credential, the real MLClient and AzureSession."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken

from tests.jobs.wire import service
from tests.jobs.wire.service import FakeAzureML

# Azure Resource Manager, the workspace's storage account, the region's Azure ML API (MLflow), the scoring URIs.
# The registry's management front end (tests/jobs/wire/service.py REGISTRY_HOST) too.
KNOWN_HOSTS = (
    "management.azure.com",
    ".blob.core.windows.net",
    ".api.azureml.ms",
    ".inference.ml.azure.com",
    ".experiments.azureml.net",
)


class DummyCredential:
    """A TokenCredential that hands out a fixed token; records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("dummy-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes.extend(scopes)
        return AccessTokenInfo("dummy-token", int(time.time()) + 3600)


def _body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in body)


@dataclass
class Wire:
    azure: FakeAzureML
    credential: DummyCredential
    # Every sleep azure-core asked its transport for (retry back-off, Retry-After, LRO polling), in seconds.
    sleeps: list[float] = field(default_factory=list)
    # URLs outside Azure the SDK tried to reach (answered with a connection error).
    offline: list[str] = field(default_factory=list)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    """The fake Azure ML in place of the network, for everything azure-core and requests send."""
    azure = FakeAzureML()
    state = Wire(azure, DummyCredential())
    wire_offline = state.offline

    def send(adapter: Any, request: Any, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Any:
        host = urlsplit(request.url).hostname or ""
        if not host.endswith(KNOWN_HOSTS):
            # Anything else (the SDK fetches MLTable's JSON schema from azuremlschemasprod.azureedge.net)
            # is unreachable, as on a machine without internet access.
            wire_offline.append(request.url)
            raise requests.exceptions.ConnectionError(f"no route to {host} (tests are offline)")
        headers = dict(request.headers)
        got = service.parse(request.method, request.url, headers, _body(request.body))
        status, answer_headers, data = azure.handle(got).encoded()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data),
            headers=answer_headers,
            status=status,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
        )
        return adapter.build_response(request, raw)

    from azure.core.pipeline.transport import RequestsTransport

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: state.sleeps.append(seconds))
    yield state
    assert not azure.unrouted, f"calls the fake Azure ML does not know: {azure.unrouted}"


@pytest.fixture
def ml(wire: Wire) -> Any:
    """The real azure.ai.ml.MLClient for the fake workspace."""
    from azure.ai.ml import MLClient

    return MLClient(wire.credential, service.SUBSCRIPTION, service.RESOURCE_GROUP, service.WORKSPACE)
