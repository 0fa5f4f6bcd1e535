"""The upgrade engine: a rollout's pins, each wave's decision, gate, steps, and its journal."""
