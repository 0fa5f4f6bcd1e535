"""Configuration (inventory, selection, playbooks, settings), validated at load."""
