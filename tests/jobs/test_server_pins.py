"""The scoring server added to an AutoML model's environment, checked against the model's own pins (review F9)."""

from __future__ import annotations

from email.parser import Parser

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from jobs.azure import server_pins, specs
from jobs.errors import JobsError
from jobs.paths import ROOT

# The conda.yaml an AutoML MLflow model carries (its Python and pins), as tests/fakes.py uses.
AUTOML_CONDA = {
    "channels": ["conda-forge"],
    "dependencies": [
        "python=3.9.19",
        "pip",
        {"pip": ["azureml-automl-runtime==1.60.0", "scikit-learn==1.5.1", "mlflow-skinny==2.9.2"]},
    ],
}


def _metadata(package: str) -> dict[str, object]:
    found = sorted((ROOT / ".venv-scoring").glob(f"lib/python3*/site-packages/{package}-*.dist-info/METADATA"))
    assert found, f"{package} is not installed in .venv-scoring (make setup)"
    return Parser().parsestr(found[-1].read_text(encoding="utf-8"))  # type: ignore[return-value]


@pytest.mark.parametrize("package", sorted(server_pins.REQUIRES))
def test_the_recorded_requirements_are_the_installed_releases_own(package):
    meta = _metadata(package.replace("-", "_"))
    linux = {"platform_system": "Linux", "sys_platform": "linux", "extra": ""}
    wanted = {}
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(linux):
            wanted[canonicalize_name(req.name)] = str(req.specifier)
    python, needs = server_pins.REQUIRES[package]
    assert meta["Requires-Python"] == python
    assert {name: str(Requirement(f"{name}{spec}").specifier) for name, spec in needs.items()} == wanted


def test_an_automl_environment_with_compatible_pins_passes():
    conda = specs.scoring_conda(AUTOML_CONDA)
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert "azureml-inference-server-http==1.5.1" in pip


def test_a_model_pin_the_server_forbids_is_refused_before_anything_is_sent():
    clashing = {
        "dependencies": [
            "python=3.8.16",
            "flask=2.2.5",
            {"pip": ["azureml-automl-runtime==1.60.0", "pydantic==1.10.13", "wrapt==1.17.0"]},
        ]
    }
    with pytest.raises(JobsError) as caught:
        specs.scoring_conda(clashing)
    message = str(caught.value)
    assert "azureml-inference-server-http==1.5.1 needs python>=3.9, but the model pins python 3.8.16" in message
    assert "needs flask~=3.1.0, but the model pins flask 2.2.5" in message
    assert "needs pydantic~=2.12.0, but the model pins pydantic 1.10.13" in message
    assert "inference-schema==1.8 needs wrapt<=1.16.0,>=1.14.0, but the model pins wrapt 1.17.0" in message


def test_a_model_that_names_the_server_itself_keeps_its_own_and_is_not_checked():
    own = {"dependencies": ["python=3.9", {"pip": ["azureml-inference-server-http==1.0.0", "flask==2.2.5"]}]}
    conda = specs.scoring_conda(own)
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert "azureml-inference-server-http==1.0.0" in pip and not any(
        p.startswith("azureml-inference-server-http==1.5") for p in pip
    )


def test_model_pins_reads_pip_and_conda_forms():
    pins = server_pins.model_pins(
        {"dependencies": ["python=3.10", "conda-forge::Flask==2.2.5", "pip", {"pip": ["Pydantic==1.10.0", "x>=1"]}]}
    )
    assert pins == {"python": "3.10", "flask": "2.2.5", "pydantic": "1.10.0"}
