"""Item pipelines, in the order of ``ITEM_PIPELINES``: clean → normalize →
dedupe → mongo. Each owns one concern and is configured from settings."""
