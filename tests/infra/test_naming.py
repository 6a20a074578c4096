import re

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.naming import RULES, SUFFIX_LENGTH, invalid_names, resource_names

# What Pulumi accepts: project names and stack names of letters, digits, '-', '_', '.'.
pulumi_names = st.text(alphabet=st.sampled_from("abcXYZ019-_."), min_size=1, max_size=100)
suffixes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=SUFFIX_LENGTH, max_size=SUFFIX_LENGTH)


@given(project=pulumi_names, stack=pulumi_names, suffix=suffixes)
@settings(max_examples=400, deadline=None)
def test_every_name_satisfies_azure_rules_for_any_project_and_stack(project, stack, suffix):
    names = resource_names(project, stack, suffix)
    assert invalid_names(names) == [], names


def test_odd_and_long_names_are_squeezed_into_the_rules():
    cases = [
        ("azureml-heart-failure", "dev"),
        ("a", "b"),
        ("x" * 100, "y" * 100),
        ("My.Project_1", "Prod.EU_2"),
        ("p", "---"),
        ("__", "1"),
        ("proj", "feature.JIRA-1234_very-long-branch-name-for-a-review-stack"),
    ]
    for project, stack in cases:
        names = resource_names(project, stack, "9zz9zz")
        assert invalid_names(names) == [], (project, stack, names)
        assert names["storage_account"] == names["storage_account"].lower()
        assert all(name.endswith("9zz9zz") or kind == "compute_cluster" for kind, name in names.items())


def test_the_suffix_tells_stacks_and_lifetimes_apart():
    first = resource_names("proj", "dev", "aaaaaa")
    second = resource_names("proj", "dev", "bbbbbb")
    for kind in ("storage_account", "key_vault", "container_registry", "online_endpoint", "ml_workspace"):
        assert first[kind] != second[kind]


def test_the_stack_stays_readable_when_the_project_name_is_long():
    names = resource_names("a-very-long-project-name-indeed", "prod", "abc123")
    assert "prod" in names["key_vault"]
    assert "prod" in names["storage_account"]


def test_rules_reject_what_azure_rejects():
    assert not RULES["storage_account"].is_valid("St-Upper")
    assert not RULES["key_vault"].is_valid("kv--double")
    assert not RULES["key_vault"].is_valid("1kv")
    assert not RULES["compute_cluster"].is_valid("cpu-123")
    assert not RULES["online_endpoint"].is_valid("hf-ends-with-")
    assert not RULES["container_registry"].is_valid("cr-hyphen")
    assert not RULES["resource_group"].is_valid("rg.")
    assert RULES["compute_cluster"].is_valid("cpu-1a")
    assert re.fullmatch(r"[a-z0-9]{3,24}", resource_names("P", "S", "abc123")["storage_account"])
