"""Shared fixtures. The simulator fixture is public API (upgrade.sim.testing)."""

pytest_plugins = ["upgrade.sim.testing"]
