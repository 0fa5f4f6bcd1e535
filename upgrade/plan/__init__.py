"""Planning: facts gathered, the monotonic policy, the plan (pure)."""
