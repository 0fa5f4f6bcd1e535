"""Execution: rollouts, waves, steps, budgets, the gate, verification, drift, notifications."""
