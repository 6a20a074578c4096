"""`jobs monitor` when the live local deployment collects nothing: it says so before any figure."""

from __future__ import annotations

from jobs.local.backend import LocalBackend
from jobs.local.endpoint import EndpointState
from jobs.monitoring.check import Thresholds


def test_monitor_warns_when_the_deployed_version_collects_nothing(tmp_path, monkeypatch):
    said: list[str] = []
    backend = LocalBackend(tmp_path / ".local", tmp_path / "runs", say=said.append)
    deployed = EndpointState(1234, 5501, "heart-failure-automl", 2, "v2.log", "now", 0.0, collect_dir=None)
    monkeypatch.setattr(backend.endpoint, "state", lambda: deployed)
    monkeypatch.setattr("jobs.local.monitoring.monitor", lambda *args, **kwargs: "compared")
    assert backend.monitor(None, Thresholds(), 24, None, []) == "compared"
    assert said and said[0].startswith("warning: the deployed version 2 collects nothing")

    said.clear()
    collecting = EndpointState(1234, 5501, "heart-failure-automl", 2, "v2.log", "now", 0.0, collect_dir="x")
    monkeypatch.setattr(backend.endpoint, "state", lambda: collecting)
    backend.monitor(None, Thresholds(), 24, None, [])
    assert said == []
