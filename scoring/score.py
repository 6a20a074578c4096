"""Azure ML entry script: `init()` once per worker, `run()` per request.

The managed online endpoint runs it under the Azure ML inference server (azmlinfsrv), with
the registered model mounted under AZUREML_MODEL_DIR; `jobs deploy --target local` runs it
under the same server on this machine. The model is an MLflow model, the format Azure AutoML
outputs and local training writes.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from azureml_inference_server_http.api.aml_response import AMLResponse
from inference_schema.parameter_types.abstract_parameter_type import AbstractParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

# The server imports this file by path; make its neighbour importable the same way everywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from collect import collector  # opt-in data collection (jobs deploy --collect); never fails a request
from schema import FEATURE_NAMES, RequestError, parse_request, swagger_records_schema

logger = logging.getLogger("heart_failure_scoring")
_model: Any = None
_columns: list[str] = []
_positive_index: int | None = None


def _reject_non_utf8_bodies() -> None:
    """Make a body that is not UTF-8 the 400 that every other non-JSON body gets.

    azmlinfsrv 1.5.1 parses the body with json.loads(bytes), which raises UnicodeDecodeError
    for invalid UTF-8; the server catches only JSONDecodeError and answers 500. That is a
    client's mistake, and a 500 would page whoever watches the endpoint.
    """
    from azureml_inference_server_http.server import input_parsers

    original = input_parsers.ObjectInput._parse_post_input
    if getattr(original, "utf8_guarded", False):
        return

    def guarded(self: Any, request: Any) -> Any:
        try:
            request.get_data().decode("utf-8")
        except UnicodeDecodeError as error:
            raise input_parsers.BadInput(f"POST body is not UTF-8 text (byte {error.start})") from None
        return original(self, request)

    guarded.utf8_guarded = True  # type: ignore[attr-defined]
    input_parsers.ObjectInput._parse_post_input = guarded


_reject_non_utf8_bodies()


class ModelLoadError(RuntimeError):
    """The model folder is missing, ambiguous or unreadable; the message says which."""


def find_model_dir(root: Path) -> Path:
    """The one folder under `root` that holds an MLmodel file, at whatever depth Azure mounts it."""
    if not root.is_dir():
        raise ModelLoadError(f"AZUREML_MODEL_DIR {root} is not a directory")
    found = sorted(path.parent for path in root.rglob("MLmodel"))
    if not found:
        raise ModelLoadError(f"no MLflow model (no MLmodel file) under {root}")
    if len(found) > 1:
        raise ModelLoadError(f"{len(found)} MLflow models under {root}, expected one: " + ", ".join(map(str, found)))
    return found[0]


def init() -> None:
    global _model, _columns, _positive_index
    import mlflow.sklearn
    from mlflow.models import Model

    model_dir = find_model_dir(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    meta = Model.load(str(model_dir / "MLmodel"))
    if "sklearn" not in meta.flavors:
        raise ModelLoadError(f"the model in {model_dir} has no sklearn flavor (flavors: {', '.join(meta.flavors)})")
    _model = mlflow.sklearn.load_model(str(model_dir))
    signature = meta.get_input_schema()
    # A model trained without some feature (e.g. `time`, dropped with --drop time) gets only
    # the columns its signature names; requests keep the lesson's 12 fields either way.
    _columns = signature.input_names() if signature is not None else list(FEATURE_NAMES)
    unknown = [c for c in _columns if c not in FEATURE_NAMES]
    if unknown:
        raise ModelLoadError(f"the model expects columns the request schema does not have: {unknown}")
    classes = [str(c).lower() for c in getattr(_model, "classes_", [])]
    _positive_index = next((i for i, c in enumerate(classes) if c in ("1", "true", "1.0")), None)
    logger.info("loaded model from %s with columns %s", model_dir, _columns)


class _RecordsParameter(AbstractParameterType):
    """Documents the records in swagger; validation is ours (schema.py), so input passes through.

    inference-schema's own conversion raises on a wrong shape, which the server turns into a
    500; here every client mistake must become a 400 that names the record and the field.
    """

    def __init__(self) -> None:
        self._swagger = swagger_records_schema()
        super().__init__(self._swagger["example"])

    def deserialize_input(self, input_data: Any) -> Any:
        return input_data

    def input_to_swagger(self) -> dict[str, Any]:
        return self._swagger


class _ObjectParameter(StandardPythonParameterType):
    def deserialize_input(self, input_data: Any) -> Any:
        return input_data


_RECORDS = _RecordsParameter()


@input_schema("data", _RECORDS, convert_to_provided_type=False)
@input_schema(
    "input_data",
    _ObjectParameter({"columns": list(FEATURE_NAMES), "index": [0],
                      "data": [[_RECORDS.sample_input[0][name] for name in FEATURE_NAMES]]}),
    convert_to_provided_type=False,
)
@input_schema("Inputs", _ObjectParameter({"data": _RECORDS.sample_input}), convert_to_provided_type=False)
@input_schema("GlobalParameters", _ObjectParameter({"method": "predict"}), convert_to_provided_type=False)
@output_schema(StandardPythonParameterType({"result": [False], "probability": [0.25]}))
def run(data: Any = None, input_data: Any = None, Inputs: Any = None, GlobalParameters: Any = None) -> Any:
    try:
        request = parse_request(data, input_data, Inputs, GlobalParameters)
    except RequestError as error:
        collector.refused(error.errors, FEATURE_NAMES)
        return AMLResponse(error.body(), 400, json_str=True)
    try:
        answer = predict(request.rows, request.method == "predict_proba")
        collector.scored(request.rows, FEATURE_NAMES, answer)
        return answer
    except Exception:
        # The detail (and the patient data in it) goes to the log only.
        logger.exception("scoring failed for %d record(s)", len(request.rows))
        return AMLResponse({"message": "the model failed to score the request; see the deployment's logs"},
                           500, json_str=True)


def predict(rows: list[list[float]], with_probability: bool) -> dict[str, list[Any]]:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(FEATURE_NAMES))[_columns]
    labels = _model.predict(frame)
    response: dict[str, list[Any]] = {"result": [str(label).lower() in ("1", "true", "1.0") for label in labels]}
    if with_probability:
        if _positive_index is None:
            raise RuntimeError("the model does not expose predict_proba for DEATH_EVENT")
        probabilities = _model.predict_proba(frame)[:, _positive_index]
        response["probability"] = [round(float(p), 6) for p in probabilities]
    return response
