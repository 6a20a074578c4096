"""Progress of local training: trials done and the best score so far, while FLAML searches.

The interface, for any training loop:

    progress = TrainingProgress(budget_s=60, metric="AUC_weighted")
    progress.trial(trials_done=12, best_score=0.9012)   # after each trial (best_score may be None)
    progress.close()                                    # once, at the end (prints the summary line)

On a terminal it is a tqdm bar over the time budget; elsewhere (CI logs, pipes) a plain line every
`interval_s` seconds, so a log is not filled with carriage returns. FLAML 2.8 has no per-trial
callback, but it appends one JSON line per trial to its log file and flushes it
(flaml/automl/training_log.py), so `FlamlLogWatcher` follows that file from a thread and feeds
`trial()`; the training loop needs no change.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm


class TrainingProgress:
    """Shows trials done and the best score so far, against the time budget (seconds) or, when the
    search is bounded by a number of trials (`max_trials`), against that number."""

    def __init__(
        self,
        budget_s: float,
        metric: str,
        stream: IO[str] | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_trials: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.metric = metric
        self.budget_s = budget_s
        self.max_trials = max_trials
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self.trials = 0
        self.best: float | None = None
        self._last_line = self.started
        self._last_trial_at = self.started
        self._said_over = False
        self._lock = threading.Lock()
        tty = getattr(self.stream, "isatty", lambda: False)()
        total, unit = (max_trials, "trials") if max_trials else (max(1, round(budget_s)), "s")
        self.bar = tqdm(
            total=total,
            unit=unit,
            desc="searching",
            file=self.stream,
            leave=False,
            bar_format="{desc} {bar} {n_fmt}/{total_fmt} " + unit + "  {postfix}",
            disable=not tty,
        )

    def _summary(self) -> str:
        best = f"{self.best:.4f}" if self.best is not None else "none yet"
        of = f" of {self.max_trials}" if self.max_trials else ""
        return (
            f"{self.trials}{of} trial{'' if self.trials == 1 and not of else 's'}, best {self.metric} so far "
            f"{best} (search cross-validation)"
        )

    def trial(self, trials_done: int, best_score: float | None) -> None:
        """Record progress: `trials_done` trials finished, the best score among them (None if none scored)."""
        with self._lock:
            if trials_done != self.trials:
                self._last_trial_at = self.clock()
            self.trials, self.best = trials_done, best_score
            self._refresh()

    def tick(self) -> None:
        """Advance the time shown (called by the watcher between trials)."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        now = self.clock()
        elapsed = min(now - self.started, self.budget_s)
        if not self.bar.disable:
            self.bar.n = min(self.trials, self.max_trials) if self.max_trials else round(elapsed)
            self.bar.set_postfix_str(self._summary(), refresh=False)
            self.bar.refresh()
        elif now - self._last_line >= self.interval_s and not self._said_over:
            self._last_line = now
            # A trial-count search has no time limit: only the count says when it is over.
            searching = self.trials < self.max_trials if self.max_trials else now - self.started <= self.budget_s
            if searching and self.max_trials:
                line = f"  {now - self.started:.0f} s: {self._summary()}"
            elif searching:
                line = f"  {now - self.started:.0f} s of {self.budget_s:.0f}: {self._summary()}"
            else:
                # Said once: the final selection prints its own lines from here on.
                self._said_over = True
                line = (
                    f"  {now - self.started:.0f} s: search over ({self._summary()}); scoring the finalists on "
                    "the project's folds and writing the report"
                )
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the bar and print one summary line: the search's time apart from the final selection's."""
        with self._lock:
            self.bar.close()
            total = self.clock() - self.started
            search = self._last_trial_at - self.started
            print(
                f"search done: {self._summary()}, in {search:.0f} s; then {total - search:.0f} s for the final "
                "selection and the report",
                file=self.stream,
                flush=True,
            )


def read_trials(log_file: Path) -> tuple[int, float | None]:
    """Trials logged in a FLAML log so far and the best score (1 - the lowest validation loss).

    FLAML minimises a loss; for the metrics used here (roc_auc_weighted, accuracy, ap) it is
    1 - the metric, as jobs/local/search.py's leaderboard reads it too. A line still being
    written (no newline yet) is left for the next read.
    """
    try:
        text = log_file.read_text()
    except OSError:
        return 0, None
    trials, best_loss = 0, None
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            record: Any = json.loads(line)
        except ValueError:
            continue
        loss = record.get("validation_loss") if isinstance(record, dict) else None
        if record.get("learner") is None or not isinstance(loss, int | float):
            continue
        trials += 1
        best_loss = loss if best_loss is None else min(best_loss, loss)
    return trials, (1 - best_loss) if best_loss is not None else None


class FlamlLogWatcher:
    """Follow the FLAML log of the run that appears under `runs_dir` during the block, feeding `progress`.

        with FlamlLogWatcher(runs_dir, progress):
            train(...)

    The run's folder is the one created after the block started; the log is re-read every
    `poll_s` seconds (it is a few hundred lines at most). `progress.close()` is called on exit.
    """

    def __init__(self, runs_dir: Path, progress: TrainingProgress, poll_s: float = 0.5) -> None:
        self.runs_dir = runs_dir
        self.progress = progress
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._before: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="flaml-progress", daemon=True)

    def __enter__(self) -> FlamlLogWatcher:
        self._before = {p.name for p in self.runs_dir.iterdir()} if self.runs_dir.is_dir() else set()
        self._thread.start()
        return self

    def _log(self) -> Path | None:
        if not self.runs_dir.is_dir():
            return None
        new = [p for p in self.runs_dir.iterdir() if p.name not in self._before and (p / "flaml.log").is_file()]
        return new[0] / "flaml.log" if len(new) == 1 else None

    def _update(self, log: Path | None) -> None:
        if log is None:
            self.progress.tick()
            return
        trials, best = read_trials(log)
        if (trials, best) != (self.progress.trials, self.progress.best):
            self.progress.trial(trials, best)
        else:
            self.progress.tick()

    def _run(self) -> None:
        log = None
        while not self._stop.wait(self.poll_s):
            log = log or self._log()
            self._update(log)
        self._update(log or self._log())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self.progress.close()
        else:
            self.progress.bar.close()
