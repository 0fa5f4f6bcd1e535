"""Command services outside a rollout: ``discover``, ``render`` and the deployed-version look."""
