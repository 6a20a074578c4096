"""A key vault's soft-delete retention is create-only: `pulumi up` of a stack whose vault was made with another
value must leave it as it is, not send a change Key Vault refuses (review N6)."""

from __future__ import annotations

import copy

from tests import azure_rules as rules
from tests.fakes import run_program

VAULT = "heartfailure-kv"


def _made_with(run, days: int):
    """`run` as if its vault had been created with `days` of retention (earlier versions of the program used 7)."""
    old = copy.deepcopy(run)
    vault = old.mocks.by_name()[VAULT]
    for record in (vault.inputs, vault.effective, vault.outputs):
        record["properties"]["softDeleteRetentionInDays"] = days
    return old


def test_a_vault_made_with_7_days_keeps_them_and_up_breaks_no_rule():
    before = _made_with(run_program(), 7)
    after = run_program(prior=before)
    vault = after.mocks.by_name()[VAULT]
    assert vault.inputs["properties"]["softDeleteRetentionInDays"] == 90  # what the program asks for a new one
    assert vault.effective["properties"]["softDeleteRetentionInDays"] == 7  # what `up` sends: the recorded value
    assert vault.same_as_before  # no update of the vault at all
    assert rules.violations(before, after) == []


def test_without_the_ignore_the_same_up_is_one_azure_rejects():
    # The rule the ignore avoids, on the same two runs: Azure rejects a change of the retention.
    before = _made_with(run_program(), 7)
    after = copy.deepcopy(run_program(prior=before))
    vault = after.mocks.by_name()[VAULT]
    vault.effective = copy.deepcopy(vault.inputs)
    vault.same_as_before = False
    assert any("rejects a change of properties.softDeleteRetentionInDays" in v for v in rules.violations(before, after))


def test_a_new_vault_is_created_with_90_days():
    vault = run_program().mocks.by_name()[VAULT]
    assert vault.effective["properties"]["softDeleteRetentionInDays"] == 90
