"""What every builder needs: the component's logical name, the settings, the Azure names, the parent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.settings import PlatformSettings

# The only tags that cannot change for a stack; see `Scope.fixed_tags`.
FIXED_TAG_KEYS = ("project", "stack", "managed-by")


@dataclass(frozen=True)
class Scope:
    """The context of one `MlPlatform`, passed to each builder (no module globals).

    `name`: the component's logical name, the stem of every child's logical name.
    `names`: the Azure names by kind (infra/naming.py), known once the stack's suffix is drawn.
    `parent`: the component every resource is parented under.
    """

    name: str
    settings: PlatformSettings
    names: pulumi.Output[dict[str, str]]
    parent: pulumi.Resource

    def name_of(self, kind: str) -> pulumi.Output[str]:
        """The Azure name of one resource kind (a key of `infra.naming.RULES`)."""
        return self.names.apply(lambda n: n[kind])

    def opts(self, **options: Any) -> pulumi.ResourceOptions:
        """Resource options with the component as parent, plus `options` (ignore_changes, ...)."""
        return pulumi.ResourceOptions(parent=self.parent, **options)

    @property
    def tags(self) -> dict[str, str]:
        return self.settings.tags

    @property
    def fixed_tags(self) -> dict[str, str]:
        """The tags of the cluster and the endpoint.

        The cluster and the endpoint never get an update with changed tags (see each), so they
        carry only the tags that cannot change for a stack; config's extra tags go elsewhere.
        """
        return {key: value for key, value in self.tags.items() if key in FIXED_TAG_KEYS}


def field_of(node: object, snake: str, camel: str) -> object:
    """A field of a provider output that arrives as a typed object or, for union types, a plain dict."""
    if type(node) is dict:
        return node.get(camel, node.get(snake))
    return getattr(node, snake, None)
