"""The policy pack: `pulumi preview --policy-pack policy` enforces these guardrails.

Constructing the PolicyPack starts the analyzer and blocks, so the policies live in
guardrails.py, which the tests import.
"""

from guardrails import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="heart-failure-guardrails", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
