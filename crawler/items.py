"""The one item the spiders yield: a post as found, filled in by pipelines."""

import scrapy


class PostItem(scrapy.Item):
    # As found by the spider.
    spider = scrapy.Field()
    url = scrapy.Field()  # the page crawled
    listing_title = scrapy.Field()  # the title on the listing that led here
    title = scrapy.Field()
    time_text = scrapy.Field()  # publication time as the page writes it
    raw_html = scrapy.Field()  # article HTML before cleaning (re-serialized)
    raw_article = scrapy.Field()  # article source exactly as served, kept for export and reprocessing
    source_url = scrapy.Field()  # link to the original article
    raw_code = scrapy.Field()  # infoCode as written in the link or request
    category = scrapy.Field()
    tags = scrapy.Field()
    media = scrapy.Field()
    # newslist only: the feed that listed the post, its item (the fields kept),
    # the whole GetNewsText.do answer, and, on a feed's page item, every item listed.
    feed = scrapy.Field()
    feed_item = scrapy.Field()
    text_payload = scrapy.Field()
    feed_listing = scrapy.Field()
    time_source = scrapy.Field()  # "feed", "share" or "page": where published_at came from

    # Filled by pipelines.
    body_html = scrapy.Field()
    body_text = scrapy.Field()
    images = scrapy.Field()
    info_code = scrapy.Field()
    kind = scrapy.Field()  # "media" (NW… code) or "rolling" (18-digit id)
    published_at = scrapy.Field()
    content_hash = scrapy.Field()

    # Set when the post cannot be stored; it then goes to ``rejects``.
    reject_reason = scrapy.Field()
    reject_detail = scrapy.Field()
