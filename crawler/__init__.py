"""The Scrapy project: settings, items and spiders."""
