"""`make demo`: the sample fleet upgraded against the simulator."""
