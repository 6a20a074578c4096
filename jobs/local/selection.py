"""The final selection: the baselines and FLAML's candidates scored on the same repeated folds, and the rule.

Candidates: two baselines (logistic regression, a 500-tree random forest), FLAML's best learner and a
soft-voting ensemble of the learners close to it. Each is scored on SELECTION_REPEATS x k stratified
folds; choose() keeps the best baseline unless a searched model beats it by more than the folds' noise,
and of tied models takes a much faster one. score_baselines() is what runs beside the search, in its
own process; score_sharing_fits() scores the searched models after it, one fit per learner and fold.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from jobs.local.features import featurized
from jobs.local.metrics import primary_score
from jobs.training import TrainingSettings

# The final selection scores every candidate on this many repeats of the k folds: one repeat of 5 folds
# put the 500-tree forest 0.008 below its 5x5 figure here, more than the gaps the selection must judge.
SELECTION_REPEATS = 3

# Of two tied candidates, the faster counts only when it is at least this much faster (timing noise).
SPEED_FACTOR = 1.5

PREDICT_TIMING_CALLS = 25


def baselines(settings: TrainingSettings) -> dict[str, Any]:
    """The two well-known defaults every search must beat, as unfitted pipelines (name -> pipeline).

    Logistic regression and a 500-tree random forest, as in bench/model_quality.py, which takes them
    from here. A blocked model family (--block-model) is left out, as it is from the search.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    n_jobs = min(settings.max_concurrent_trials, os.cpu_count() or 1)
    models = {
        "LogisticRegression": ("baseline LogisticRegression", LogisticRegression(max_iter=2000)),
        "RandomForest": (
            "baseline RandomForest(500 trees)",
            RandomForestClassifier(n_estimators=500, random_state=settings.seed, n_jobs=n_jobs),
        ),
    }
    return {
        name: featurized(settings, model)
        for family, (name, model) in models.items()
        if family not in settings.blocked_models
    }


def selection_folds(y: pd.Series, folds: int, seed: int, repeats: int = SELECTION_REPEATS) -> list[tuple[Any, Any]]:
    """(train, test) row indices: `repeats` stratified k-fold splits, shuffled with seed, seed+1, ... (modulo 2**32,
    the range scikit-learn takes, so that every --seed jobs/options.py allows works)

    The first repeat is the project's own folds, on which the reported out-of-fold metrics are computed.
    """
    from sklearn.model_selection import StratifiedKFold

    return [
        split
        for repeat in range(repeats)
        for split in StratifiedKFold(n_splits=folds, shuffle=True, random_state=(seed + repeat) % 2**32).split(y, y)
    ]


def _single_threaded(fitted: Any) -> Any:
    """The fitted pipeline with every n_jobs set to 1: one row must not pay for starting worker threads."""
    params = {key: 1 for key in fitted.get_params(deep=True) if key.endswith("n_jobs")}
    return fitted.set_params(**params) if params else fitted


def predict_ms(fitted: Any, X: pd.DataFrame, calls: int = PREDICT_TIMING_CALLS) -> float:
    """Median milliseconds of predict_proba on one row, single-threaded, after one warm-up call."""
    model = _single_threaded(fitted)
    row = X.iloc[[0]]
    model.predict_proba(row)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        model.predict_proba(row)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


@dataclass(frozen=True)
class Candidate:
    """One model of the final selection, scored on the selection folds."""

    name: str
    kind: str  # "baseline", "search" (FLAML's best learner) or "ensemble"
    pipeline: Any  # unfitted
    fold_scores: Any  # the primary metric on each selection fold (repeats x folds)
    proba: Any  # out-of-fold probabilities on the first repeat (the project's folds)
    predict_ms: float  # median single-row predict_proba, one thread, of a fold's model

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores))

    def noise(self, other: Candidate) -> float:
        """Standard error of the paired per-fold difference to `other` (0 against itself)."""
        diff = np.asarray(self.fold_scores) - np.asarray(other.fold_scores)
        return float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def fold_fits(pipeline: Any, X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]]) -> tuple[list[Any], Any]:
    """Fit a clone of `pipeline` on each split's training rows: each split's predict_proba on its test rows
    (arrays of shape (test rows, 2)), and the first split's fitted model (to time a prediction)."""
    from sklearn.base import clone

    probas, first = [], None
    for train_rows, test_rows in splits:
        fitted = clone(pipeline).fit(X.iloc[train_rows], y.iloc[train_rows])
        probas.append(fitted.predict_proba(X.iloc[test_rows]))
        first = fitted if first is None else first
    return probas, first


def candidate_of(
    name: str,
    kind: str,
    pipeline: Any,
    probas: list[Any],
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
    ms: float,
) -> Candidate:
    """The candidate from each split's test-row probabilities (fold_fits' first answer)."""
    proba = np.zeros(len(y))
    scores = []
    for index, ((_, test_rows), fold_proba) in enumerate(zip(splits, probas, strict=True)):
        scores.append(primary_score(metric, y.iloc[test_rows], fold_proba[:, 1]))
        if index < folds:
            proba[test_rows] = fold_proba[:, 1]
    return Candidate(name, kind, pipeline, np.array(scores), proba, ms)


def score_candidate(
    name: str,
    kind: str,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
) -> Candidate:
    """Fit `pipeline` on each split's training rows and score it on the rest."""
    probas, first = fold_fits(pipeline, X, y, splits)
    return candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(first, X))


def soft_vote_members(pipeline: Any) -> list[Any] | None:
    """The member pipelines (same featurizer, one learner each) of a pipeline whose model is an unweighted
    soft VotingClassifier, else None. Such an ensemble's predict_proba is np.average of its members' on the
    same rows (sklearn's VotingClassifier.predict_proba), so its fold scores follow from the members' fits."""
    from sklearn.base import clone
    from sklearn.ensemble import VotingClassifier

    step, model = pipeline.steps[-1]
    if not isinstance(model, VotingClassifier) or model.voting != "soft" or model.weights is not None:
        return None
    return [clone(pipeline).set_params(**{step: clone(member)}) for _, member in model.estimators]


def score_sharing_fits(
    pipelines: list[tuple[str, str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
) -> list[Candidate]:
    """score_candidate for each (name, kind, pipeline), fitting each distinct pipeline once per split: the
    searched learner and a soft-voting ensemble that contains it share its fits.

    The ensemble's fold probabilities are its members' averaged, as VotingClassifier averages them; it is
    fitted whole once, on the first split, to time its prediction and to check that average on that
    split's rows; when they differ (a learner that does not refit identically), it is scored whole.
    """
    import joblib  # type: ignore[import-untyped]
    from sklearn.base import clone

    fits: dict[str, tuple[list[Any], Any]] = {}

    def shared(pipeline: Any) -> tuple[list[Any], Any]:
        key = joblib.hash(pipeline)
        if key not in fits:
            fits[key] = fold_fits(pipeline, X, y, splits)
        return fits[key]

    candidates = []
    for name, kind, pipeline in pipelines:
        members = soft_vote_members(pipeline)
        if members is None:
            probas, first = shared(pipeline)
            candidates.append(
                candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(first, X))
            )
            continue
        member_probas = [shared(member)[0] for member in members]
        probas = [np.average(np.asarray(fold), axis=0) for fold in zip(*member_probas, strict=True)]
        train_rows, test_rows = splits[0]
        whole = clone(pipeline).fit(X.iloc[train_rows], y.iloc[train_rows])
        if not np.array_equal(whole.predict_proba(X.iloc[test_rows]), probas[0]):
            candidates.append(score_candidate(name, kind, pipeline, X, y, splits, metric, folds))
            continue
        candidates.append(candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(whole, X)))
    return candidates


def choose(candidates: list[Candidate]) -> tuple[Candidate, str]:
    """The pick, and the rule that made it, in words.

    1. The best-scoring baseline is the champion. A searched model replaces it only when it scores higher
       by more than the noise: the standard error of their paired per-fold difference.
    2. Among the champion and the models that qualified, those within the noise of the top scorer are
       tied; of tied ones the fastest to predict one row is taken when it is at least SPEED_FACTOR times
       faster than the top scorer (a smaller difference is timing noise), else the top scorer.
    """
    baseline = [c for c in candidates if c.kind == "baseline"]
    if baseline:
        champion = max(baseline, key=lambda c: c.score)
        beat = [c for c in candidates if c.kind != "baseline" and c.score - champion.score > c.noise(champion)]
        contenders = [champion, *beat]
        if beat:
            rule = (
                f"{len(beat)} searched model(s) beat the best baseline ({champion.name}, {champion.score:.4f}) "
                "by more than the folds' noise"
            )
        else:
            rule = (
                f"no searched model beat the best baseline ({champion.name}, {champion.score:.4f}) by more than "
                "the folds' noise, so the baseline stays"
            )
    else:
        contenders, rule = list(candidates), "every baseline is blocked; the searched models compete on score"
    top = max(contenders, key=lambda c: c.score)
    tied = [c for c in contenders if top.score - c.score <= c.noise(top)]
    fastest = min(tied, key=lambda c: c.predict_ms)
    if fastest is not top and top.predict_ms >= SPEED_FACTOR * fastest.predict_ms:
        return fastest, (
            f"{rule}; {fastest.name} is within the noise of the top scorer {top.name} "
            f"({fastest.score:.4f} vs {top.score:.4f}) and {top.predict_ms / fastest.predict_ms:.1f}x "
            "faster to predict one row, so it is taken"
        )
    if len(tied) > 1:
        return top, f"{rule}; the top scorer is taken: no model within its noise is {SPEED_FACTOR:g}x faster"
    return top, f"{rule}; the top scorer is taken"


@dataclass(frozen=True)
class SearchResult:
    pipeline: Any  # unfitted: featurizer + learner (or voting ensemble) with the chosen configuration
    learner: str
    metrics: dict[str, float]  # out-of-fold, on the project's folds
    proba: Any  # out-of-fold probabilities of DEATH_EVENT
    candidates: list[Candidate]  # the final selection, all on the same folds
    chosen: Candidate
    rule: str  # why `chosen` won, in words
    budget: dict[str, Any]  # what the search was given and what it used, and each phase's seconds
    honest: dict[str, Any] | None  # when a leaking column is used: the best baseline without it, same folds
    fitted: Any = None  # the chosen pipeline already fitted on every row (a baseline, beside the search), or None

    @property
    def final_scores(self) -> dict[str, float]:
        return {c.name: c.score for c in self.candidates}


@dataclass(frozen=True)
class BaselineScores:
    """What the baseline process answers: the baselines scored on the selection folds, each also fitted
    on every row (so a baseline that is picked needs no refit), and the honest figure when asked for."""

    candidates: list[Candidate]
    fitted: dict[str, Any]  # name -> the pipeline fitted on every row
    honest: dict[str, Any] | None
    finished_at: float  # time.time() when the work was done: the parent, which knows when it started the
    # process, tells from it the process's whole time (the interpreter's start and imports included)


def _threads(pipeline: Any) -> dict[str, Any]:
    """The pipeline's n_jobs parameters that ask for more than one thread (None, the default, is left alone:
    setting it makes LogisticRegression warn)."""
    params = pipeline.get_params(deep=True)
    return {key: value for key, value in params.items() if key.endswith("n_jobs") and value not in (None, 1)}


def score_baselines(
    settings: TrainingSettings, X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]], leaks: list[str]
) -> BaselineScores:
    """The baselines on the selection folds and on every row, one thread each (FLAML has the other core).

    A forest's trees do not depend on n_jobs (each tree's seed is drawn from random_state before the
    trees are spread over threads), so these are the fits the main process would make; the fitted
    pipelines get their declared n_jobs back for prediction.
    """
    from sklearn.base import clone

    metric, folds = settings.primary_metric, settings.n_cross_validations
    candidates, fitted = [], {}
    for name, pipeline in baselines(settings).items():
        one_thread = clone(pipeline).set_params(**dict.fromkeys(_threads(pipeline), 1))
        candidates.append(
            replace(score_candidate(name, "baseline", one_thread, X, y, splits, metric, folds), pipeline=pipeline)
        )
        fitted[name] = one_thread.fit(X, y).set_params(**_threads(pipeline))
    honest = honest_figure(settings, X.drop(columns=leaks), y, splits, leaks) if leaks else None
    return BaselineScores(candidates, fitted, honest, time.time())


def honest_figure(
    settings: TrainingSettings, honest_X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]], leaks: list[str]
) -> dict[str, Any]:
    """The best baseline on the same folds without the leaking columns: cheaper than a second search, and
    the search rarely beats the baselines by much here."""
    yardsticks = baselines(settings)
    if not yardsticks:  # every baseline blocked: logistic regression still gives the figure, as a yardstick
        yardsticks = {
            name: pipeline
            for name, pipeline in baselines(replace(settings, blocked_models=())).items()
            if "LogisticRegression" in name
        }
    metric, folds = settings.primary_metric, settings.n_cross_validations
    scored = [
        score_candidate(
            name,
            "baseline",
            pipeline.set_params(**dict.fromkeys(_threads(pipeline), 1)),
            honest_X,
            y,
            splits,
            metric,
            folds,
        )
        for name, pipeline in yardsticks.items()
    ]
    best = max(scored, key=lambda c: c.score)
    return {
        "columns": leaks,
        "model": best.name,
        "score": best.score,
        "noise": float(np.std(best.fold_scores, ddof=1) / np.sqrt(len(best.fold_scores))),
        "metric": metric,
    }


def selection_table(found: SearchResult) -> list[dict[str, Any]]:
    """The final selection's rows, best score first: name, kind, score, noise to the pick, predict time."""
    baseline = max((c for c in found.candidates if c.kind == "baseline"), key=lambda c: c.score, default=None)
    rows = [
        {
            "name": c.name,
            "kind": c.kind,
            "score": round(c.score, 4),
            "fold_sd": round(float(np.std(c.fold_scores, ddof=1)), 4),
            "lead_over_baseline": None if baseline is None or c is baseline else round(c.score - baseline.score, 4),
            "noise_vs_baseline": None if baseline is None or c is baseline else round(c.noise(baseline), 4),
            "noise_vs_pick": round(c.noise(found.chosen), 4),
            "predict_ms": round(c.predict_ms, 2),
            "chosen": c is found.chosen,
        }
        for c in found.candidates
    ]
    return sorted(rows, key=lambda row: -row["score"])


def selection_lines(found: SearchResult, metric: str) -> list[str]:
    """What `train` prints about the final selection."""
    lines = [
        f"  {'*' if row['chosen'] else ' '} {row['name']:<34} {metric} {row['score']:.4f} "
        f"(fold sd {row['fold_sd']:.3f}), single-row predict {row['predict_ms']:5.1f} ms"
        + (
            f", {row['lead_over_baseline']:+.4f} over the best baseline (noise {row['noise_vs_baseline']:.4f})"
            if row["lead_over_baseline"] is not None
            else ""
        )
        for row in selection_table(found)
    ]
    folds = found.budget["selection_folds"]
    return [
        *lines,
        f"picked {found.learner}: {metric} {found.chosen.score:.4f} (mean over the {folds} selection "
        f"folds), single-row predict {found.chosen.predict_ms:.1f} ms; rule: {found.rule}",
    ]
