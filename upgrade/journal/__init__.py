"""The durable record of rollouts and the run lock."""
