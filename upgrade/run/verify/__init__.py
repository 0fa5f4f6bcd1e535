"""Verification: the checks of one Deployment after a deploy, and ``verify-all``'s drift."""
