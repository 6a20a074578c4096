"""Azure ML entry script: `init()` once per worker, `run()` per request.

The managed online endpoint runs it under the Azure ML inference server (azmlinfsrv), with
the registered model mounted under AZUREML_MODEL_DIR; `jobs deploy --target local` runs it
under the same server on this machine. The model is an MLflow model, the format Azure AutoML
outputs and local training writes.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
import types
from pathlib import Path
from typing import Any

from azureml_inference_server_http.api.aml_response import AMLResponse
from inference_schema.parameter_types.abstract_parameter_type import AbstractParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

# The server imports this file by path; make its neighbour importable the same way everywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from collect import collector, whole_number_columns  # opt-in data collection (jobs deploy --collect)
from contract import ModelContract, OperatingPoint, find_contract
from encoding import EncodingError, decoded_body
from fast_path import OnnxClassifier
from fast_path import load as load_fast_path
from schema import BodyError, RequestError, RequestSchema, SchemaError, parse_body

logger = logging.getLogger("heart_failure_scoring")
_model: Any = None
_columns: list[str] = []
_names: tuple[str, ...] = ()  # _columns as a tuple, for the collector
_dtypes: list[Any] = []  # numpy dtype of each of _columns, from the model's MLflow signature
_whole: tuple[bool, ...] = ()  # per column of _columns: collected as whole numbers (collect.whole_number_columns)
_positive_index: int | None = None
_thread_limits: Any = None  # threadpoolctl's limiter, kept alive for the worker's life
_request: RequestSchema | None = None  # the model's request contract (its fields required, the dataset's optional)
_point: OperatingPoint | None = None  # the threshold `result` is decided at
_low: Any = None  # numpy arrays: the training rows' lowest and highest value per column of _columns
_high: Any = None
_serving = "not loaded"  # which path answers (ONNX Runtime or scikit-learn) and why (fast_path.load)


def install_body_guard(input_parsers: Any = None) -> str:
    """Make every body the server cannot read a 400 with a reason, where the server allows it.

    azmlinfsrv 1.5.1 parses the body in `input_parsers.ObjectInput._parse_post_input` with
    json.loads(bytes) and turns only JSONDecodeError into a 400: invalid UTF-8, nesting deeper than
    the parser's recursion limit, or an integer over Python's 4300-digit conversion limit escape as a
    500 and the worker logs a traceback. Its JSON also keeps the last of repeated keys without a word.
    The guard parses the body with `schema.parse_body` instead and raises the server's own BadInput.
    A body sent with `Content-Encoding: gzip` (or deflate) is decoded first, within encoding.py's
    bound: past it the answer is a 413 (werkzeug's RequestEntityTooLarge, which the server's own
    HTTPException handler answers with its status and {"message"}), an unknown coding a 415 (the
    server's UnsupportedInput), and data that is not what the header says a 400.

    These are the server's internals, not its API: when a server build lacks any of them, the guard
    is not installed, a warning says so, and scoring works as the server does (those bodies may then
    get a 5xx). Returns "installed", "already installed" or "not installed: <why>".
    """
    try:
        if input_parsers is None:
            from azureml_inference_server_http.server import input_parsers as server_parsers

            input_parsers = server_parsers
        parser_class = input_parsers.ObjectInput
        bad_input = input_parsers.BadInput
        original = parser_class._parse_post_input
        # Both optional: without them a refused coding or size is still a 4xx, a 400.
        unsupported = getattr(input_parsers, "UnsupportedInput", bad_input)
        try:
            from werkzeug.exceptions import RequestEntityTooLarge

            too_large: Any = RequestEntityTooLarge
        except ImportError:
            too_large = bad_input
        if not (isinstance(bad_input, type) and issubclass(bad_input, Exception) and callable(original)):
            raise TypeError("BadInput is not an exception class or _parse_post_input is not callable")
    except Exception as error:  # ImportError, AttributeError, TypeError: another server build
        status = f"not installed: this inference server build differs ({type(error).__name__}: {error})"
        logger.warning("request body guard %s; bodies it cannot parse may get a 5xx instead of a 400", status)
        return status
    if getattr(original, "body_guard", False):
        return "already installed"

    def guarded(self: Any, request: Any) -> Any:
        if not getattr(request, "is_json", True):
            return original(self, request)  # the server's own 415 for another content type
        headers = getattr(request, "headers", None)
        coding = headers.get("Content-Encoding") if headers is not None else None
        try:
            parsed = parse_body(decoded_body(request.get_data(), coding))
        except EncodingError as error:
            refusal = {413: too_large, 415: unsupported}.get(error.status, bad_input)
            raise refusal(str(error)) from None
        except BodyError as error:
            raise bad_input(str(error)) from None
        if not isinstance(parsed, dict):
            raise bad_input(
                'the body is JSON but not an object; expected {"data": [record, ...]} or another form in the swagger'
            )
        extract = getattr(self, "_extract_parameters", None)
        if callable(extract):
            return extract(parsed)
        if coding:  # the server's own parser would read the compressed bytes
            raise bad_input("this inference server build cannot take a compressed body; send the JSON uncompressed")
        # Without the server's extractor, let it parse again: the body is known to be safe now.
        return original(self, request)

    # A marker on the function (read back with getattr) so that a second install sees the first.
    guarded.body_guard = True  # type: ignore[attr-defined]  # functions take attributes; mypy knows none
    parser_class._parse_post_input = guarded
    return "installed"


install_body_guard()


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


# Attribute names under which estimators keep their worker count: scikit-learn and LightGBM
# `n_jobs`, XGBoost `nthread`/`n_jobs`, LightGBM params `num_threads`, CatBoost `thread_count`.
_THREAD_ATTRIBUTES = ("n_jobs", "num_threads", "nthread", "thread_count")
_MAX_VISITS = 100_000
# Never walked into: plain values, and code (a module's globals are not the model's to change).
_NOT_ESTIMATORS = (
    str,
    bytes,
    int,
    float,
    bool,
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
)


def single_threaded(model: Any) -> list[str]:
    """Set every worker count inside `model` to 1; return the paths of what was changed.

    One record takes microseconds per tree, and starting a pool of workers for it takes
    milliseconds: a 25-tree random forest with n_jobs=2 predicts one row in about 12 ms, with
    n_jobs=1 in about 1.3 ms (bench/scoring.py). Parallelism across requests comes from the
    server's workers instead. The walk is generic, over instance attributes, lists, tuples and
    dicts, so it reaches the fitted estimators inside scikit-learn pipelines and ensembles
    (`estimators_`, not only the unfitted `estimators` that set_params changes) and inside Azure
    AutoML's own wrapper classes. Anything it cannot read or set is left alone.
    """
    changed: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str, int]] = [(model, type(model).__name__, 0)]
    while stack and len(seen) < _MAX_VISITS:
        obj, path, depth = stack.pop()
        if id(obj) in seen or depth > 25 or obj is None or isinstance(obj, _NOT_ESTIMATORS):
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(obj))
            continue
        if isinstance(obj, dict):
            for key, value in list(obj.items()):
                if key in _THREAD_ATTRIBUTES and isinstance(value, int) and not isinstance(value, bool) and value != 1:
                    obj[key] = 1  # a params dict, e.g. a LightGBM Booster's
                    changed.append(f"{path}[{key!r}]")
                else:
                    stack.append((value, f"{path}[{key!r}]", depth + 1))
            continue
        module = type(obj).__module__ or ""
        if module.startswith(("numpy", "pandas", "scipy")):
            continue  # data, not estimators
        try:
            attributes = vars(obj)
        except TypeError:
            continue  # no __dict__ (slots, C types): nothing we could set safely
        for name, value in list(attributes.items()):
            if name in _THREAD_ATTRIBUTES and (
                value is None or (isinstance(value, int) and not isinstance(value, bool) and value != 1)
            ):
                try:
                    setattr(obj, name, 1)
                    changed.append(f"{path}.{name}")
                except Exception:  # a read-only attribute: leave it
                    logger.debug("could not set %s.%s", path, name)
            elif not name.startswith("__"):
                stack.append((value, f"{path}.{name}", depth + 1))
    return changed


def _limit_native_thread_pools() -> Any:
    """Cap OpenMP and BLAS pools at one thread per worker process (threadpoolctl, a scikit-learn dependency)."""
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1)
    except Exception as error:  # missing or unusable: the n_jobs walk still applies
        logger.warning("could not limit native thread pools: %s", error)
        return None


def _signature_dtypes(signature: Any, count: int) -> list[Any]:
    """The numpy dtype of each input column of an MLflow signature; float64 where it names none."""
    import numpy as np

    dtypes: list[Any] = []
    try:
        types = list(signature.input_types()) if signature is not None else []
    except Exception:
        types = []
    for kind in types[:count]:
        try:
            dtype = kind if isinstance(kind, np.dtype) else np.dtype(kind.to_numpy())
        except Exception:
            dtype = np.dtype("float64")
        dtypes.append(dtype)
    return dtypes + [np.dtype("float64")] * (count - len(dtypes))


def init() -> None:
    """Load the model and its contract (scoring/contract.py); ModelLoadError saying what is missing or wrong."""
    global _model, _columns, _names, _dtypes, _whole, _positive_index, _thread_limits, _request, _point, _low, _high
    import numpy as np
    from mlflow.models import Model

    model_dir = find_model_dir(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    meta = Model.load(str(model_dir / "MLmodel"))
    if "sklearn" not in meta.flavors:
        raise ModelLoadError(f"the model in {model_dir} has no sklearn flavor (flavors: {', '.join(meta.flavors)})")
    contract_file = find_contract(model_dir, Path(__file__).resolve().parent)
    if contract_file is None:
        raise ModelLoadError(
            f"no model contract (model-contract.json) in {model_dir} or beside score.py: the contract says what "
            "the model accepts and at which threshold it answers; `jobs train` writes it, `jobs deploy --target "
            "azure` stages it with the code"
        )
    try:
        contract = ModelContract.load(contract_file)
        point = contract.deployed_point()
    except SchemaError as error:
        raise ModelLoadError(str(error)) from None
    signature = meta.get_input_schema()
    # The model's own signature decides what a request must carry; the contract's list is the fallback.
    _columns = signature.input_names() if signature is not None else list(contract.inputs)
    if sorted(_columns) != sorted(contract.inputs):
        raise ModelLoadError(
            f"the contract in {contract_file} is for a model with inputs {list(contract.inputs)}, but this model's "
            f"signature has {_columns}: they were not written together"
        )
    _model = _answering_model(model_dir, meta.metadata)
    try:
        _request = contract.dataset.request_schema(_columns)
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    _names = tuple(_columns)
    _point = point
    _low = np.array([contract.training_ranges.get(c, (-math.inf, math.inf))[0] for c in _columns])
    _high = np.array([contract.training_ranges.get(c, (-math.inf, math.inf))[1] for c in _columns])
    # The frame carries the types the model was trained with (MLflow records int64 columns
    # as long), not float64 for everything.
    _dtypes = _signature_dtypes(signature, len(_columns))
    kinds = {f.name: f.kind for f in contract.dataset.features}
    _whole = whole_number_columns(_columns, kinds, [d.kind for d in _dtypes])
    classes = list(getattr(_model, "classes_", []))
    _positive_index = next((i for i, c in enumerate(classes) if str(c).lower() in ("1", "true", "1.0")), None)
    if _positive_index is None or not hasattr(_model, "predict_proba"):
        raise ModelLoadError(
            f"the model in {model_dir} gives no probability for the positive class (classes {classes}); "
            "the endpoint answers at a threshold on that probability"
        )
    _describe_swagger(_request)
    # An ONNX Runtime session was made single-threaded when it was opened; the walk is for scikit-learn's.
    changed = ["ONNX Runtime session (opened so)"] if isinstance(_model, OnnxClassifier) else single_threaded(_model)
    _thread_limits = _limit_native_thread_pools()
    logger.info(
        "loaded model from %s with columns %s (types %s), contract %s, threshold %s (%s); set to one thread: %s",
        model_dir,
        _columns,
        ", ".join(sorted({str(d) for d in _dtypes})),
        contract_file,
        _point.threshold,
        _point.rule,
        ", ".join(changed) or "nothing to change",
    )
    # The model and the libraries loaded so far live as long as the worker: moved out of the
    # collector's reach, a full collection no longer walks them during a request (gc.freeze, Python
    # docs). Measured with bench/collection.py: a 1000-record request with collection on, spaced
    # requests, p50 7.9 ms without this, 3.4 ms with it (3.3 ms with collection off).
    gc.freeze()


def _answering_model(model_dir: Path, metadata: Any) -> Any:
    """The fast path when the model has one that checks out here (fast_path.py), else the MLflow model as before;
    sets _serving to which one and why, and logs it (a warning when a recorded fast path could not be used)."""
    global _serving
    import mlflow.sklearn

    serving = load_fast_path(model_dir, metadata, _columns)
    _serving = serving.text
    logger.log(logging.WARNING if serving.fell_back else logging.INFO, "answering with %s", _serving)
    return serving.model if serving.model is not None else mlflow.sklearn.load_model(str(model_dir))


class _RecordsParameter(AbstractParameterType):
    """Documents the records in swagger; validation is ours (schema.py), so input passes through.

    inference-schema's own conversion raises on a wrong shape, which the server turns into a
    500; here every client mistake must become a 400 that names the record and the field.
    """

    def __init__(self, swagger: dict[str, Any]) -> None:
        self._swagger = swagger
        super().__init__(swagger["example"])

    def deserialize_input(self, input_data: Any) -> Any:
        return input_data

    def input_to_swagger(self) -> dict[str, Any]:
        return self._swagger


class _ObjectParameter(StandardPythonParameterType):
    def deserialize_input(self, input_data: Any) -> Any:
        return input_data


# Before init() nothing says which fields the model uses: swagger starts generic, and init() describes the
# model's own fields (_describe_swagger). The server builds /swagger.json after init() (azmlinfsrv 1.5.1,
# aml_blueprint.py: invoke_init, then Swagger), from what the decorators registered last for this function.
_GENERIC_RECORDS = {"type": "array", "items": {"type": "object"}, "example": [{}]}
_ANSWER_EXAMPLE = {"result": [False], "probability": [0.25], "threshold": 0.3, "outside_training_range": [[]]}


def _decorated(function: Any, records: dict[str, Any], output: bool = True) -> Any:
    """`function` with the inference-schema decorators for the three request forms, `records` the records' schema
    (and, with `output`, the answer's: inference-schema takes an output schema once per function)."""
    example = records["example"][0]
    columns = list(example)
    decorators = (
        input_schema("data", _RecordsParameter(records), convert_to_provided_type=False),
        input_schema(
            "input_data",
            _ObjectParameter({"columns": columns, "index": [0], "data": [[example[c] for c in columns]]}),
            convert_to_provided_type=False,
        ),
        input_schema("Inputs", _ObjectParameter({"data": [example]}), convert_to_provided_type=False),
        input_schema("GlobalParameters", _ObjectParameter({"method": "predict"}), convert_to_provided_type=False),
        *([output_schema(StandardPythonParameterType(_ANSWER_EXAMPLE))] if output else []),
    )
    for decorate in reversed(decorators):
        function = decorate(function)
    return function


def _describe_swagger(request: RequestSchema) -> None:
    """Register the model's own request schema for /swagger.json (its fields required, the dataset's optional)."""
    _decorated(_score, request.swagger_records_schema(), output=False)


def _score(data: Any = None, input_data: Any = None, Inputs: Any = None, GlobalParameters: Any = None) -> Any:
    """Score the records of one of the three request forms (see schema.RequestSchema.parse_request).

    Returns {"result": [bool, ...], "probability": [float, ...], "threshold": float,
    "outside_training_range": [[field, ...], ...]}: per record, whether its probability of the positive
    class is at or above the deployment's threshold, that probability (6 places), the threshold itself,
    and the model's fields whose value lies outside what the training data covered (scored all the same).
    A malformed request gets a 400 AMLResponse that lists every problem; a model failure a generic 500.
    """
    if _request is None:
        return AMLResponse({"message": "the model is not loaded (init() has not run)"}, 503, json_str=True)
    try:
        request = _request.parse_request(data, input_data, Inputs, GlobalParameters)
        features = frame(request.rows)
    except RequestError as error:
        collector.refused(error.errors, _request.dataset.feature_names)
        return AMLResponse(error.body(), 400, json_str=True)
    try:
        answer = predict(features, outside_training_range(request.rows))
        collector.scored(request.rows, _names, answer, _whole)
        return answer
    except Exception:
        # The detail (and the patient data in it) goes to the log only.
        logger.exception("scoring failed for %d record(s)", len(request.rows))
        return AMLResponse(
            {"message": "the model failed to score the request; see the deployment's logs"}, 500, json_str=True
        )


run = _decorated(_score, _GENERIC_RECORDS)


def outside_training_range(rows: list[list[float]]) -> list[list[str]]:
    """Per row (the model's columns in order), the columns whose value lies outside the training rows' range."""
    import numpy as np

    values = np.array(rows, dtype=np.float64)
    outside = (values < _low) | (values > _high)
    if not outside.any():
        return [[] for _ in rows]
    return [[_columns[i] for i in np.flatnonzero(row)] for row in outside]


def frame(rows: list[list[float]]) -> Any:
    """The model's input: one row per record, the model's columns in its signature's order and types (a frame;
    for the fast path, float64 rows x columns as they are).

    Raises RequestError when a value cannot be given the signature's type (a fraction for a column
    the model was trained on as whole numbers).
    """
    import numpy as np
    import pandas as pd

    values = np.array(rows, dtype=np.float64)
    float64 = np.dtype("float64")
    if all(dtype == float64 for dtype in _dtypes):
        if getattr(_model, "takes_arrays", False):
            # The fast path reads the numbers themselves, in the signature's order (fast_path.OnnxClassifier):
            # a frame would cost it more than its own predict (0.03 ms to build, 0.07 ms to read back).
            return values
        return pd.DataFrame(values, columns=_columns, copy=False)  # one block: the cheapest to build and to read
    columns: dict[str, Any] = {}
    problems = []
    for position, (name, dtype) in enumerate(zip(_columns, _dtypes)):
        column = values[:, position]
        if dtype.kind in "iu":
            fractional = np.flatnonzero(column != np.floor(column))
            problems += [
                {
                    "record": int(i),
                    "field": name,
                    "problem": f"expected a whole number: the model was "
                    f"trained with whole numbers for {name}, got {column[i]:g}",
                    "kind": "not_whole",
                }
                for i in fractional[:10]
            ]
        if dtype.kind in "US":
            # Whole numbers as "60", not "60.0": how a CSV column of numbers reads as text.
            text = [str(int(v)) if v.is_integer() else repr(v) for v in column.tolist()]
            columns[name] = np.array(text, dtype=object)
        else:
            columns[name] = column.astype(dtype)
    if problems:
        raise RequestError(problems)
    return pd.DataFrame(columns, copy=False)


def predict(features: Any, outside: list[list[str]]) -> dict[str, Any]:
    """The answer for the model's input frame: per record the probability of the positive class (6 places),
    `result` = probability >= the deployment's threshold, the threshold, and `outside` as given."""
    import numpy as np

    assert _point is not None  # init() sets it before any request
    probabilities = np.round(_model.predict_proba(features)[:, _positive_index].astype(np.float64), 6)
    # The rounded figure decides: a client comparing the probability it got with the threshold agrees.
    return {
        "result": (probabilities >= _point.threshold).tolist(),
        "probability": probabilities.tolist(),
        "threshold": _point.threshold,
        "outside_training_range": outside,
    }
