"""Package a fitted pipeline's fast path: convert it to ONNX, check it against scikit-learn, or say why not.

The endpoint then answers with ONNX Runtime instead of scikit-learn (scoring/fast_path.py, docs/speed.md). The
conversion is only trusted after it is checked: every training row is scored by both, and the ONNX model is kept
only when no probability differs by more than scoring/fast_path.py's TOLERANCE. Otherwise, or when a step has no
faithful conversion, the record says why, and the model is served by scikit-learn as before: never silently.

Precision, measured on the shipped data: a StandardScaler converted by skl2onnx computes in float32 and moved
some answers by 0.016. Here the steps in front of the estimator are written as float64 Sub/Div nodes, the very
operations scikit-learn does (X -= mean_; X /= scale_), and only their output is cast to float32 for the trees,
which scikit-learn's own trees do too (they predict on float32 input). The estimator itself is converted by
skl2onnx, LightGBM by onnxmltools' converter registered with skl2onnx (skl2onnx's documented way for a
pipeline that holds a LightGBM model).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.fast_path import FILE, INPUT_NAME, OUTPUT_NAME, TOLERANCE, FastPathRecord, probabilities, session

# Steps allowed in front of the estimator (scikit-learn's, by class name), each as the float64 nodes it becomes:
# (ONNX operator, the fitted attribute it applies), in order; an attribute that is None (with_mean=False) is skipped.
FLOAT64_STEPS = {"StandardScaler": (("Sub", "mean_"), ("Div", "scale_"))}
CHECK_ROWS = 20  # synthetic rows inside the training ranges, which the endpoint reproduces before serving
CHECK_SEED = 0
# ONNX opsets: the default domain's for the Sub/Div/Cast nodes and skl2onnx, ai.onnx.ml 3 for the tree ensembles.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class FastModel:
    """The decision and, when the fast path is used, the ONNX model's bytes (written as model.onnx)."""

    record: FastPathRecord
    onnx_bytes: bytes | None = None

    def tags(self) -> dict[str, str]:
        """The run's serving.* tags, which the registered model carries (jobs/lineage.py RUN_TAG_PREFIXES)."""
        return {"serving.fast_path": "used" if self.record.used else "refused", "serving.path": self.record.summary()}

    def card_section(self) -> str:
        """The model card's Markdown section on how the endpoint answers."""
        return f"## Serving\n\n- {self.record.summary()}\n"

    def write(self, folder: Path) -> None:
        """Write model.onnx into the MLflow model's `folder` when the fast path is used."""
        if self.onnx_bytes is not None:
            (folder / FILE).write_bytes(self.onnx_bytes)


class NotConvertible(Exception):
    """The pipeline has no faithful ONNX conversion here; the message says which step and why."""


def package(pipeline: Any, X: pd.DataFrame, tolerance: float = TOLERANCE) -> FastModel:
    """The fast path for `pipeline` (fitted, a scikit-learn Pipeline or a bare classifier) trained on `X`
    (n x inputs, float64 columns in the signature's order): used, with its ONNX bytes, when ONNX Runtime's
    probabilities are within `tolerance` of pipeline.predict_proba on every row of X; refused, with the reason,
    otherwise. Never raises for a model it cannot convert: the reason is the answer."""
    import hashlib

    columns = [str(c) for c in X.columns]
    try:
        prefix, estimator = _split(pipeline)
        model = _onnx_model(prefix, estimator, len(columns))
    except NotConvertible as error:
        return FastModel(FastPathRecord(used=False, reason=str(error), inputs=columns))
    except ImportError as error:  # a venv without the converters (requirements.txt pins them)
        return FastModel(FastPathRecord(used=False, reason=f"the ONNX converters are not installed: {error}"))
    onnx_bytes = model.SerializeToString()
    values = X.to_numpy(dtype=np.float64)
    check = _check_rows(X)
    try:
        sess = session(onnx_bytes)
        worst, _ = _compare(sess, pipeline, values)
        worst_check, check_probabilities = _compare(sess, pipeline, check)
        worst = max(worst, worst_check)
    except Exception as error:  # onnxruntime's errors have no common base; any of them refuses the fast path
        reason = f"ONNX Runtime could not run the converted model: {type(error).__name__}: {error}"
        return FastModel(FastPathRecord(used=False, reason=reason, inputs=columns))
    record = FastPathRecord(
        used=worst <= tolerance,
        max_abs_diff=worst,
        rows_checked=len(values),
        tolerance=tolerance,
        inputs=columns,
        runtime=f"onnxruntime=={version('onnxruntime')}",
    )
    if not record.used:
        reason = (
            f"the ONNX conversion's probabilities differ from scikit-learn's by up to {worst:.2e} on the training "
            f"and check rows, more than the tolerance {tolerance:g}"
        )
        return FastModel(replace(record, reason=reason))
    return FastModel(
        replace(
            record,
            sha256=hashlib.sha256(onnx_bytes).hexdigest(),
            classes=[str(c) for c in estimator.classes_],
            check_rows=check.tolist(),
            check_probabilities=check_probabilities.tolist(),
        ),
        onnx_bytes,
    )


def _split(pipeline: Any) -> tuple[list[tuple[str, Any]], Any]:
    """(the steps in front of the estimator, the estimator); NotConvertible for a step with no float64 form."""
    steps = list(getattr(pipeline, "steps", [("model", pipeline)]))
    *prefix, (_, estimator) = steps
    kept = []
    for name, step in prefix:
        if step is None or step == "passthrough":
            continue
        if type(step).__name__ not in FLOAT64_STEPS or not type(step).__module__.startswith("sklearn."):
            raise NotConvertible(
                f"step {name!r} ({type(step).__name__}) has no float64 conversion here; in front of the model only "
                + ", ".join(FLOAT64_STEPS)
                + " or passthrough"
            )
        kept.append((name, step))
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise NotConvertible(f"{type(estimator).__name__} gives no class probabilities")
    return kept, estimator


def _onnx_model(prefix: list[tuple[str, Any]], estimator: Any, inputs: int) -> Any:
    """The whole pipeline as one ONNX model: float64 input X, the prefix in float64, the estimator converted."""
    from onnx import TensorProto, checker, helper, numpy_helper

    converted = _convert_estimator(estimator, inputs)
    graph = converted.graph
    estimator_input = graph.input[0].name
    nodes, initializers, current = [], [], INPUT_NAME
    for index, (name, step) in enumerate(prefix):
        for operation, attribute in FLOAT64_STEPS[type(step).__name__]:
            value = getattr(step, attribute, None)
            if value is None:  # with_mean=False / with_std=False: that half is not applied
                continue
            constant = f"{name}_{index}_{attribute.rstrip('_')}"
            initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float64), constant))
            output = f"{name}_{index}_{operation.lower()}"
            nodes.append(helper.make_node(operation, [current, constant], [output]))
            current = output
    nodes.append(helper.make_node("Cast", [current], [estimator_input], to=TensorProto.FLOAT))
    graph_nodes = [*nodes, *graph.node]
    del graph.node[:]
    graph.node.extend(graph_nodes)
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.DOUBLE, [None, inputs]))
    if OUTPUT_NAME not in [output.name for output in graph.output]:
        raise NotConvertible(f"the converted {type(estimator).__name__} has no {OUTPUT_NAME!r} output")
    checker.check_model(converted)
    return converted


def _convert_estimator(estimator: Any, inputs: int) -> Any:
    """skl2onnx's conversion of the estimator on float32 input, probabilities as a plain tensor (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _register_lightgbm()
    if getattr(estimator, "flatten_transform", False):
        # skl2onnx converts a VotingClassifier only with flatten_transform=False, which shapes transform()'s
        # output alone; predict_proba is the same either way (and checked all the same).
        estimator = copy.copy(estimator)
        estimator.flatten_transform = False
    try:
        return convert_sklearn(
            estimator,
            initial_types=[("estimator_input", FloatTensorType([None, inputs]))],
            options={id(estimator): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
    except Exception as error:  # skl2onnx raises its own, RuntimeError or others for models it does not cover
        raise NotConvertible(
            f"{type(estimator).__name__} has no ONNX conversion in skl2onnx: {type(error).__name__}: {error}"
        ) from None


_registered: list[bool] = []


def _register_lightgbm() -> None:
    """Teach skl2onnx LightGBM's classifier (onnxmltools' converter), once per process."""
    if _registered:
        return
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    _registered.append(True)


def _compare(sess: Any, pipeline: Any, values: Any) -> tuple[float, Any]:
    """(the largest |ONNX - scikit-learn| probability over `values` (n x inputs float64) and every class,
    scikit-learn's probabilities (n x classes float64))."""
    columns = getattr(pipeline, "feature_names_in_", None)
    frame = pd.DataFrame(values, columns=columns) if columns is not None else values
    expected = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    got = probabilities(sess, values)
    if got.shape != expected.shape:
        raise ValueError(f"ONNX answers have shape {got.shape}, scikit-learn's {expected.shape}")
    return float(np.max(np.abs(got - expected))), expected


def _check_rows(X: pd.DataFrame) -> Any:
    """CHECK_ROWS synthetic rows (CHECK_ROWS x inputs float64): each column drawn uniformly within its training
    range, whole numbers where the column holds only whole numbers. Not any patient's data, so they may travel in
    the model's metadata."""
    rng = np.random.default_rng(CHECK_SEED)
    low, high = X.min().to_numpy(dtype=np.float64), X.max().to_numpy(dtype=np.float64)
    rows = rng.uniform(low, high, size=(CHECK_ROWS, X.shape[1]))
    whole = (X.to_numpy(dtype=np.float64) % 1 == 0).all(axis=0)
    rows[:, whole] = np.round(rows[:, whole])
    return rows
