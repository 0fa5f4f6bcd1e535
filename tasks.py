"""This repo's invoke tasks: the astro-fleet collection (upgrade.cli.tasks)."""
from upgrade.cli.tasks import namespace  # noqa: F401
