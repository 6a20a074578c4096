"""Progress while local training runs: trials done and the best score so far."""

from __future__ import annotations

import io
import json
from pathlib import Path

from jobs.local.progress import FlamlLogWatcher, TrainingProgress, read_trials


def trial_line(loss: float, learner: str = "lgbm") -> str:
    return json.dumps({"record_id": 0, "validation_loss": loss, "learner": learner, "config": {}}) + "\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_read_trials_counts_finished_lines_and_takes_the_lowest_loss(tmp_path):
    log = tmp_path / "flaml.log"
    log.write_text(
        trial_line(0.2)
        + trial_line(0.1, "rf")
        + '{"curr_best_record_id": 1}\n'
        + trial_line(0.3)
        + '{"record_id": 9, "validation_loss": 0.0'
    )  # the last line is still being written
    trials, best = read_trials(log)
    assert trials == 3
    assert abs(best - 0.9) < 1e-9
    assert read_trials(tmp_path / "missing.log") == (0, None)


def test_the_watcher_reports_trials_and_best_score_as_the_log_grows(tmp_path):
    runs = tmp_path / "runs"
    (runs / "older-run").mkdir(parents=True)
    (runs / "older-run" / "flaml.log").write_text(trial_line(0.01) * 50)  # another run's log: not ours
    stream = io.StringIO()
    clock = Clock()
    progress = TrainingProgress(budget_s=60, metric="AUC_weighted", stream=stream, interval_s=0, clock=clock)
    with FlamlLogWatcher(runs, progress, poll_s=0.01) as watcher:
        run = runs / "new-run"
        run.mkdir()
        (run / "flaml.log").write_text(trial_line(0.25) + trial_line(0.15))
        clock.now = 5
        while progress.trials < 2:
            watcher._stop.wait(0.01)
        clock.now = 12
        with (run / "flaml.log").open("a") as log:
            log.write(trial_line(0.2))
        while progress.trials < 3:
            watcher._stop.wait(0.01)
    out = stream.getvalue()
    assert "2 trials, best AUC_weighted so far 0.8500" in out
    assert "12 s of 60: 3 trials, best AUC_weighted so far 0.8500" in out
    assert out.strip().splitlines()[-1].startswith("search done: 3 trials, best AUC_weighted so far 0.8500")
    assert "\r" not in out  # not a terminal: plain lines


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_is_a_progress_bar(tmp_path: Path):
    stream = Terminal()
    clock = Clock()
    progress = TrainingProgress(budget_s=30, metric="AUC_weighted", stream=stream, clock=clock)
    clock.now = 10
    progress.trial(4, 0.91)
    progress.close()
    out = stream.getvalue()
    assert "\r" in out and "searching" in out and "10/30 s" in out
    assert "4 trials, best AUC_weighted so far 0.9100" in out


def test_a_search_bounded_by_trials_counts_trials(tmp_path: Path):
    stream = Terminal()
    clock = Clock()
    progress = TrainingProgress(budget_s=60, metric="AUC_weighted", stream=stream, clock=clock, max_trials=20)
    clock.now = 3
    progress.trial(5, 0.88)
    progress.close()
    out = stream.getvalue()
    assert "5/20 trials" in out and "5 of 20 trials, best AUC_weighted so far 0.8800" in out


def test_a_trial_count_search_is_not_over_when_the_time_budget_would_be():
    stream = io.StringIO()
    clock = Clock()
    progress = TrainingProgress(
        budget_s=10, metric="AUC_weighted", stream=stream, interval_s=0, clock=clock, max_trials=100
    )
    clock.now = 50
    progress.trial(70, 0.9)
    clock.now = 60
    progress.trial(100, 0.91)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "  50 s: 70 of 100 trials, best AUC_weighted so far 0.9000 (search cross-validation)"
    assert lines[1].startswith("  60 s: search over (100 of 100 trials")


def test_search_over_is_said_once_and_the_summary_separates_search_from_selection():
    stream = io.StringIO()
    clock = Clock()
    progress = TrainingProgress(budget_s=60, metric="AUC_weighted", stream=stream, interval_s=0, clock=clock)
    clock.now = 58
    progress.trial(145, 0.92)
    for now in (61, 70, 90, 128):
        clock.now = now
        progress.tick()
    progress.close()
    out = stream.getvalue()
    assert out.count("search over") == 1
    assert out.strip().splitlines()[-1] == (
        "search done: 145 trials, best AUC_weighted so far 0.9200 (search "
        "cross-validation), in 58 s; then 70 s for the final selection and the "
        "report"
    )
