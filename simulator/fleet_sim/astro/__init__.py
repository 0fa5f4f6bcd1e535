"""The Astro control plane, simulated: one loopback HTTP server and its state."""
