"""The settings ``scrapy startproject`` writes, with the docs' MongoPipeline
on and the same concurrency as finews (16 requests, all to one host)."""

BOT_NAME = "peer"
SPIDER_MODULES = ["peer.spiders"]
NEWSPIDER_MODULE = "peer.spiders"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16  # the template says 1 with DOWNLOAD_DELAY = 1: finews's 16 and no delay
DOWNLOAD_DELAY = 0
FEED_EXPORT_ENCODING = "utf-8"
ITEM_PIPELINES = {"peer.pipelines.MongoPipeline": 300}
MONGO_URI = "mongodb://127.0.0.1:27017"  # bench/peer.py passes the embedded server's with -s
MONGO_DATABASE = "peer"
