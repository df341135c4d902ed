"""The Dagster asset graph of the podcast platform."""
