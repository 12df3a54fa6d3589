"""The one item the spiders yield: a post as found, filled in by pipelines.

Its stored fields (``url``, ``title``, ``body_html``, ``time_source``, …) are
the crawled fields of the post model, ``finews/core/model.py``; only the fields
used while crawling are declared here.
"""

from typing import TYPE_CHECKING

import scrapy
from scrapy.item import ItemMeta

from finews.core.model import CRAWLED_FIELDS

if TYPE_CHECKING:  # a class made at run time, from the model: an Item to the type checker
    StoredPostItem = scrapy.Item
else:
    StoredPostItem = ItemMeta("StoredPostItem", (scrapy.Item,),
                              {"__module__": __name__, **{name: scrapy.Field() for name in CRAWLED_FIELDS}})


class PostItem(StoredPostItem):
    # As found by the spider, besides the stored fields.
    spider = scrapy.Field()
    listing_title = scrapy.Field()  # the title on the listing that led here
    time_text = scrapy.Field()  # publication time as the page writes it
    raw_html = scrapy.Field()  # article HTML before cleaning (re-serialized)
    raw_article = scrapy.Field()  # article source exactly as served, kept for export and reprocessing
    raw_code = scrapy.Field()  # infoCode as written in the link or request
    # newslist only: the feed that listed the post, its item (the fields kept),
    # the whole GetNewsText.do answer, and, on a feed's page item, every item listed.
    feed = scrapy.Field()
    feed_item = scrapy.Field()
    text_payload = scrapy.Field()
    feed_listing = scrapy.Field()

    # Set when the post cannot be stored; it then goes to ``rejects``.
    reject_reason = scrapy.Field()
    reject_detail = scrapy.Field()
