"""Storage: MongoDB connection and embedded server, the post store and spool,
leases, the validator, near-duplicate index, reading for people. Uses pymongo
and the domain (``finews.core``); knows nothing of Scrapy."""
