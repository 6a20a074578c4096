"""The Pulumi program: settings, naming and the Azure ML platform component."""
