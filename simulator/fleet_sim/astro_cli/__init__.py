"""``astro-sim``: the ``astro`` CLI's deploy, inspect and list, against the simulator."""
