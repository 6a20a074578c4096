"""The promotion rule every target applies (jobs/promotion_rules.py), on tags as jobs/lineage.py writes them."""

from __future__ import annotations

import pytest

from jobs.errors import JobsError
from jobs.lineage import TrainingRun, Verdict, Yardstick, model_tags
from jobs.promotion_rules import (
    PROMOTION_TAGS,
    check_promotable,
    promoted_by,
    promotion_problems,
    promotion_tags,
    review_markdown,
    same_promotion,
)

RUN = TrainingRun(
    "automl_job_1",
    "automl_job_1_7",
    {"AUC_weighted": 0.81, "accuracy": 0.8},
    {
        "data_version": "abc123",
        "git_commit": "f00",
        "leaking_columns_used": "none",
        "setting.drop_columns": "time",
        "headline.auc": "out-of-fold AUC 0.772 (95% CI 0.714 to 0.824, 299 patients)",
    },
)


def gated(run: TrainingRun = RUN, min_score: float | None = None) -> dict[str, str]:
    """The tags `jobs register` writes for a model that passed the gate."""
    verdict = Verdict("AUC_weighted", 0.81, Yardstick("baseline LogisticRegression", 0.75, 0.81), None, min_score)
    return model_tags(run, verdict, registered_by="jobs register")


def test_a_gated_honest_model_may_be_promoted():
    assert promotion_problems(gated()) == []
    check_promotable("heart-failure-automl version 1", gated())


def test_a_model_registered_without_the_gate_is_refused():
    tags = {k: v for k, v in gated().items() if not k.startswith("gate.")}
    with pytest.raises(
        JobsError, match=r"version 4 may not be promoted to prod:\n  - it carries no quality-gate record"
    ):
        check_promotable("heart-failure-automl version 4", tags)


def test_a_dry_runs_model_whose_gate_never_ran_is_refused():
    undecided = model_tags(RUN, None, registered_by="jobs register")
    (problem,) = promotion_problems(undecided)
    assert "a dry run's model, never gated" in problem


def test_a_score_below_the_floor_its_gate_records_is_refused():
    tags = {**gated(min_score=0.80), "metric.AUC_weighted": "0.700000"}
    (problem,) = promotion_problems(tags)
    assert "0.7000 is below the floor its gate records (gate.min_auc 0.8000)" in problem


def test_the_lessons_reproduction_with_a_leaking_column_is_refused_by_name():
    leaky = TrainingRun(RUN.name, RUN.best_child, RUN.metrics, {**RUN.tags, "leaking_columns_used": "time"})
    (problem,) = promotion_problems(gated(leaky))
    assert problem.startswith("it uses time, which leaks the outcome")


def test_a_version_that_does_not_say_whether_it_leaks_is_refused():
    tags = {**gated(), "leaking_columns_used": "unknown"}
    (problem,) = promotion_problems(tags)
    assert "does not record whether it uses a column that leaks" in problem


def test_every_failed_rule_is_named_at_once():
    tags = {k: v for k, v in gated().items() if k not in ("gate.baseline", "leaking_columns_used")}
    with pytest.raises(JobsError) as refused:
        check_promotable("v", tags)
    assert "quality-gate record" in str(refused.value) and "leak" in str(refused.value)
    assert str(refused.value).endswith("Nothing was copied, shared or deployed.")


def test_a_promoted_copy_keeps_every_tag_and_says_where_from_who_and_when():
    source = gated()
    copy = promotion_tags(
        source, "azureml://subscriptions/s/resourceGroups/g/workspaces/w", "3", "ana", "2026-12-03T17:00:00Z"
    )
    assert {k: copy[k] for k in source} == source
    assert [copy[k] for k in PROMOTION_TAGS] == [
        "azureml://subscriptions/s/resourceGroups/g/workspaces/w",
        "3",
        "ana",
        "2026-12-03T17:00:00Z",
    ]


def test_a_copy_is_the_same_promotion_only_with_the_same_origin_version_and_run():
    copy = promotion_tags(gated(), "ws-dev", "3", "ana", "t")
    assert same_promotion(copy, "ws-dev", "3", gated())
    assert not same_promotion(copy, "ws-other", "3", gated())
    assert not same_promotion(copy, "ws-dev", "4", gated())
    assert not same_promotion(copy, "ws-dev", "3", {**gated(), "training_run": "automl_job_9"})


def test_who_promotes_is_the_github_actor_and_run_in_ci_else_the_user():
    ci = {"GITHUB_ACTOR": "ana", "GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "org/repo"}
    assert promoted_by(ci) == "ana (GitHub Actions run 42 of org/repo)"
    assert promoted_by({"USER": "bob", "LOGNAME": "bob"}) not in ("", "ana")


def test_the_reviewer_page_names_the_verdicts_the_gate_figures_and_the_card():
    page = review_markdown("heart-failure-automl version 3", gated())
    assert "## Promote heart-failure-automl version 3 to prod?" in page
    assert "- yes: passed the quality gate" in page and "- yes: uses no leaking column" in page
    assert "| gate.baseline | baseline LogisticRegression 0.750000 |" in page
    assert "out-of-fold AUC 0.772 (95% CI 0.714 to 0.824, 299 patients)" in page
    assert "| accuracy (cross-validated, at probability 0.5" in page


def test_the_reviewer_page_says_no_for_a_refused_version():
    page = review_markdown("v", {**gated(), "leaking_columns_used": "time"})
    assert "- NO: uses no leaking column: it uses time" in page
