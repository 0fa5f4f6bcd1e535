"""The Astro control plane: the astro CLI, the platform API, each Airflow API."""
