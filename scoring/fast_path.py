"""The deployed model's fast path: the trained pipeline as ONNX, answered by ONNX Runtime on one thread.

A 500-tree random forest predicts one row in tens of milliseconds in scikit-learn (a Python loop over the
trees) and in well under a millisecond in ONNX Runtime (docs/speed.md). Local training converts the fitted
pipeline (jobs/local/fast_model.py), checks the converted model against scikit-learn on every training row, and
only then writes `model.onnx` beside the MLflow model and a record of it in the MLmodel file's `metadata` under
`fast_path`. This module is the record's one definition, read by both sides, and the endpoint's loader:
score.py serves `model.onnx` only when the record says it passed, the file is the one recorded (its SHA-256),
its inputs are the model's signature in order, and it reproduces the recorded check answers here, in the
deployment's own runtime; otherwise it serves the MLflow model as before and logs why.

Azure AutoML's models carry no such record (they are scikit-learn MLflow models), so they are served by
scikit-learn as before; onnxruntime is only imported for a model that has one. Python 3.9 compatible (the
endpoint's environment may be an AutoML model's own).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILE = "model.onnx"
METADATA_KEY = "fast_path"  # under MLmodel's `metadata`
FORMAT = 1
# The largest difference from scikit-learn's probability that a fast path may have, on every training row and
# on every check row. The endpoint answers with 6 decimals, so this is at most a unit in the 5th.
TOLERANCE = 1e-5
INPUT_NAME = "X"  # the graph's one input: float64, one column per model input, in the signature's order
OUTPUT_NAME = "probabilities"  # per row, one probability per class, in `classes` order


@dataclass(frozen=True)
class FastPathRecord:
    """What training decided about the fast path, as MLmodel's metadata[fast_path] holds it.

    used: whether `model.onnx` was written; reason: why not (empty when used); max_abs_diff: the largest
    |ONNX - scikit-learn| probability over the rows checked (None when no conversion was checked); rows_checked:
    training rows compared; sha256: of model.onnx; inputs: the graph's input columns in order; classes: the
    probability columns' classes, as text; check_rows / check_probabilities: synthetic rows inside the training
    ranges (no patient's data) and scikit-learn's probability per class for each, which the endpoint reproduces
    before it serves the file; runtime: the onnxruntime release checked against.
    """

    used: bool
    reason: str = ""
    max_abs_diff: float | None = None
    rows_checked: int = 0
    tolerance: float = TOLERANCE
    sha256: str = ""
    inputs: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    check_rows: list[list[float]] = field(default_factory=list)
    check_probabilities: list[list[float]] = field(default_factory=list)
    runtime: str = ""
    format: int = FORMAT

    def metadata(self) -> dict[str, Any]:
        """The record as MLmodel metadata (plain JSON/YAML values)."""
        return {METADATA_KEY: asdict(self)}

    def summary(self) -> str:
        """One line for people: the training output, the report, the model card, the registration."""
        if self.used:
            return (
                f"ONNX Runtime fast path ({FILE}): probabilities within {self.max_abs_diff:.1e} of scikit-learn's on "
                f"all {self.rows_checked} training rows (tolerance {self.tolerance:g})"
            )
        return f"scikit-learn (no fast path: {self.reason})"

    @staticmethod
    def from_metadata(metadata: Any) -> FastPathRecord | None:
        """The record in an MLmodel's metadata; None when there is none. ValueError when it is malformed."""
        raw = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
        if raw is None:
            return None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"metadata[{METADATA_KEY}] is not a format-{FORMAT} fast-path record")
        known = set(FastPathRecord.__dataclass_fields__)
        try:
            return FastPathRecord(**{key: value for key, value in raw.items() if key in known})
        except TypeError as error:
            raise ValueError(f"metadata[{METADATA_KEY}] is incomplete: {error}") from None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def session(model: Any) -> Any:
    """An ONNX Runtime session for `model` (a path or the file's bytes) on one thread, as the endpoint runs it:
    one record takes microseconds, and a thread pool's wake-up costs more (parallelism comes from the server's
    workers). ImportError when onnxruntime is not installed."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: its notes on unused initializers say nothing to an operator
    source = str(model) if isinstance(model, Path) else model
    return onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def probabilities(sess: Any, rows: Any) -> Any:
    """Per row of `rows` (n x inputs, any numbers), the probability of each class as float64 (n x classes)."""
    import numpy as np

    values = np.ascontiguousarray(rows, dtype=np.float64)
    return np.asarray(sess.run([OUTPUT_NAME], {INPUT_NAME: values})[0], dtype=np.float64)


class OnnxClassifier:
    """The fast path in the shape score.py uses of a scikit-learn classifier: `classes_` and `predict_proba`."""

    takes_arrays = True  # score.frame gives it the float64 rows as they are, without building a frame

    def __init__(self, sess: Any, classes: list[str], record: FastPathRecord) -> None:
        import numpy as np

        self._session = sess
        self.classes_ = np.array(classes)
        self.record = record

    def predict_proba(self, features: Any) -> Any:
        """`features`: a frame or array of the model's inputs in the signature's order (n x inputs)."""
        return probabilities(self._session, features)

    def predict(self, features: Any) -> Any:
        return self.classes_[self.predict_proba(features).argmax(axis=1)]

    def __repr__(self) -> str:
        return f"OnnxClassifier({FILE}, inputs {self.record.inputs}, classes {list(self.classes_)})"


@dataclass(frozen=True)
class Serving:
    """How the endpoint answers: `model` the fast path (None: scikit-learn serves), `text` which path and why
    (for the log), `fell_back` whether a fast path the model records could not be used here (worth a warning)."""

    model: OnnxClassifier | None
    text: str
    fell_back: bool = False


def load(model_dir: Path, metadata: Any, columns: list[str]) -> Serving:
    """The fast path of the MLflow model in `model_dir` whose signature has `columns`, or why scikit-learn serves:
    a model without a record (Azure AutoML's), one training refused (its reason), or one whose file, inputs,
    runtime or answers here do not match its record (fell_back)."""
    try:
        record = FastPathRecord.from_metadata(metadata)
    except ValueError as error:
        return Serving(None, f"scikit-learn: the fast-path record is unreadable ({error})", fell_back=True)
    if record is None:
        return Serving(None, "scikit-learn: the model records no fast path (not packaged by local training)")
    if not record.used:
        return Serving(None, f"scikit-learn: training refused the fast path: {record.reason}")
    problem = _file_problem(model_dir / FILE, record, columns)
    if not problem:
        try:
            sess = session(model_dir / FILE)
            problem = _answer_problem(sess, record)
        except ImportError as error:
            problem = f"onnxruntime is not installed in this environment ({error})"
        except Exception as error:  # onnxruntime's own errors (a file it cannot load or run) have no common base
            problem = f"ONNX Runtime could not load or run {FILE}: {type(error).__name__}: {error}"
    if problem:
        return Serving(None, f"scikit-learn: the model's fast path is not used: {problem}", fell_back=True)
    return Serving(
        OnnxClassifier(sess, record.classes, record),
        f"ONNX Runtime ({FILE}, one thread): within {record.max_abs_diff:.1e} of scikit-learn on "
        f"{record.rows_checked} training rows, and on its {len(record.check_rows)} check rows here",
    )


def _file_problem(path: Path, record: FastPathRecord, columns: list[str]) -> str:
    if not path.is_file():
        return f"{FILE} is missing from {path.parent}"
    if sha256_of(path) != record.sha256:
        return f"{FILE} is not the file training checked (its SHA-256 differs from the record's)"
    if list(record.inputs) != list(columns):
        return f"{FILE} takes inputs {list(record.inputs)}, the model's signature has {list(columns)}"
    if not record.check_rows or len(record.check_rows) != len(record.check_probabilities):
        return "the record has no check rows to reproduce"
    return ""


def _answer_problem(sess: Any, record: FastPathRecord) -> str:
    """Whether this runtime reproduces the recorded answers to the check rows within the tolerance."""
    import numpy as np

    got = probabilities(sess, record.check_rows)
    expected = np.asarray(record.check_probabilities, dtype=np.float64)
    if got.shape != expected.shape:
        return f"its answers have shape {got.shape}, the record's {expected.shape}"
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= record.tolerance:
        return (
            f"here it answers the check rows up to {worst:.2e} away from scikit-learn's recorded probabilities "
            f"(tolerance {record.tolerance:g})"
        )
    return ""
