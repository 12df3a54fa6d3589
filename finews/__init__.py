"""finews: crawl the finews mirror and its news-share host into MongoDB.

Layers, each importing only from the ones before it:

- ``finews.core``: the domain (parsing, cleaning, normalizing, the post model,
  reasons, jobs); no Scrapy, Twisted or pymongo.
- ``finews.storage``: MongoDB (store, spool, leases, schema, near duplicates,
  reading); pymongo, no Scrapy.
- ``crawler`` (spiders, middlewares, extensions, scheduler, runner) and
  ``pipelines`` (thin item pipelines): the Scrapy adapters.
- ``finews.cli``: the ``finews`` command.

``finews.replica`` is the stand-in site for tests, demos and benchmarks; it
uses the domain only.
"""

__version__ = "0.1.0"
