"""finews: crawl the finews mirror and its news-share host into MongoDB."""

__version__ = "0.1.0"
