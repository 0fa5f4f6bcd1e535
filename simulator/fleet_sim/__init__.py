"""Test doubles for astro-fleet-upgrade: the systems it talks to, run on this machine.

* ``astro``: the Astro control plane (platform API, each Deployment's Airflow REST API,
  the runtime feed), one loopback server process with its state on disk;
* ``astro_cli``: ``astro-sim``, an ``astro``-compatible command that talks to it;
* ``forge``: GitHub's and GitLab's pull-request APIs over local bare repositories;
* ``ci``: a CI deploy action, as a bare repository's ``post-receive`` hook;
* ``lifecycle`` and ``command`` (``fleet-sim``): start, seed, drive and stop them.

Fidelity, not speed: every shape comes from a public source (astro-cli's code, Astronomer's
API reference, recorded Airflow responses, GitHub's and GitLab's API descriptions). The
product never imports this package; it knows the simulator only as configuration.
"""

__version__ = "1.0.0"
