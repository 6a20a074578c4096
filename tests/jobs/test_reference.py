"""docs/cli.md is generated from the parser and cannot go stale unnoticed (make lint runs --check)."""

from __future__ import annotations

import pytest

from jobs import cli, reference


def test_the_committed_reference_is_what_the_parser_gives():
    assert reference.REFERENCE.read_text() == reference.render()


def test_every_command_and_flag_is_in_the_reference_with_its_target():
    text = reference.render()
    for name in cli.COMMANDS:
        assert f"\n## {name}\n" in text, name
    # A flag refused on the other target says so in its row.
    assert "| `--port` `PORT` |  | local | port on 127.0.0.1 (a whole number from 1024 to 65535; default: the " in text
    assert "| `--instance-type` `INSTANCE_TYPE` | `Standard_DS3_v2` | azure |" in text


def test_the_reference_does_not_depend_on_this_machine(monkeypatch):
    plain = reference.render()
    monkeypatch.setenv("JOBS_TARGET", "azure")
    monkeypatch.setenv("PULUMI_STACK", "someone-elses")
    assert reference.render() == plain
    assert str(reference.ROOT) not in plain


def test_check_fails_with_the_command_to_run_when_the_file_is_stale(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text(reference.render().replace("## deploy", "## deploy (old)"))
    monkeypatch.setattr(reference, "REFERENCE", stale)
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    assert reference.main(["--check"]) == 1
    assert "python -m jobs.reference --write" in capsys.readouterr().err
    assert reference.main(["--write"]) == 0
    assert reference.main(["--check"]) == 0


@pytest.mark.parametrize("flags", [["--write", "--check"]])
def test_write_and_check_together_are_refused(flags):
    with pytest.raises(SystemExit) as done:
        reference.main(flags)
    assert done.value.code == 2
