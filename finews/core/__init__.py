"""The domain: parsing pages and feeds, cleaning and normalizing articles, the
stored post model, reject reasons, jobs. Plain Python on text and dicts; no
Scrapy, Twisted or pymongo (``tests/test_layers.py`` checks)."""
