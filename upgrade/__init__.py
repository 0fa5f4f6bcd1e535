"""Upgrade Astro Runtime across a fleet of Airflow Deployments, in verified waves."""

__version__ = "0.1.0"
