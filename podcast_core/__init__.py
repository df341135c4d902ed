"""Domain logic of the podcast platform: plain Python, usable and testable without Dagster."""
