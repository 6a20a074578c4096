"""One builder per concern of the platform, each a function of the settings, the names and the
resources it depends on, returning its resources. `infra/platform.py` calls them in order.

Every builder keeps the logical names (`f"{name}-rg"`, ...) and the parent (the `MlPlatform`
component) that a real stack's state is keyed by; tests/infra/test_resource_graph.py pins them.
"""
