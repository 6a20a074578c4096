"""Bad data files for local training fail with a message that says where, before any training."""

from __future__ import annotations

import pytest

from jobs.errors import JobsError
from jobs.local.features import features, read_data
from jobs.training import TrainingSettings


def write(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_non_numeric_and_missing_values_are_named_with_their_rows(tmp_path):
    frame = read_data(write(tmp_path, "age,sex,DEATH_EVENT\n60,1,0\nold,1,1\n70,,0\n"))
    with pytest.raises(JobsError, match=r"missing or non-numeric values in age, sex \(e\.g\. data rows 3, 4"):
        features(frame, TrainingSettings())


def test_a_label_that_is_not_0_or_1_is_refused(tmp_path):
    frame = read_data(write(tmp_path, "age,DEATH_EVENT\n60,0\n70,2\n80,0.5\n"))
    with pytest.raises(JobsError, match=r"must be 0 or 1; found 0\.5, 2"):
        features(frame, TrainingSettings())


def test_an_empty_file_says_so_as_on_azure(tmp_path):
    with pytest.raises(JobsError, match="is empty; expected a CSV with a header row"):
        read_data(write(tmp_path, ""))


def test_dropped_columns_are_left_out(tmp_path):
    frame = read_data(write(tmp_path, "age,time,DEATH_EVENT\n60,oops,0\n70,5,1\n"))
    X, y = features(frame, TrainingSettings(drop_columns=("time",)))
    assert list(X.columns) == ["age"] and list(y) == [0, 1]
