"""Dagster wiring: thin assets, checks, resources and sensors over the pure transforms."""
