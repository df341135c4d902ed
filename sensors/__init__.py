"""Sensors: the RSS poller, and the follower that enriches every new transcript."""

from sensors.enrichment import enrichment_sensor
from sensors.rss import rss_sensor

__all__ = ["enrichment_sensor", "rss_sensor"]
