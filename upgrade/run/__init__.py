"""Execution: ``session`` (one command's connections to the fleet: the runners' hosts,
Astro's control plane, the catalog), then three rooms: ``rollout/`` (the upgrade engine:
pins, decision, gate, waves), ``verify/`` (one Deployment's checks after a deploy, and
``verify-all``'s drift) and ``services/`` (``discover``, ``render``, what Astro runs now).
``steps`` is what each playbook step does to a repo or a Deployment, shared by the engine
and ``render``."""
