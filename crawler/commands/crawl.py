"""``scrapy crawl``, with what a scheduled job needs: resumable state per job
in the data folder, an exit code that says how the run went, and the same
summary table ``finews run`` prints (on stdout; Scrapy's log is on stderr)."""

from __future__ import annotations

import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.crawler import CrawlerProcessBase
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from crawler.jobs import configure_job, unknown
from crawler.runner import JobLocked, SpiderRun, check_spider_arguments, job_dir_lock, salvage_job_dir, spider_loader
from crawler.summary import summarize
from finews.core.exits import EXIT_FAILED, EXIT_LOCKED, EXIT_USAGE, exit_code
from finews.storage.db import InvalidURI, checked_connect


class Command(ScrapyCrawl):
    def _settings(self) -> Settings:
        if self.settings is None:
            raise RuntimeError("Scrapy gives a command its settings before it runs")
        return self.settings

    def _process(self) -> CrawlerProcessBase:
        if self.crawler_process is None:
            raise RuntimeError("Scrapy gives a command its crawler process before it runs")
        return self.crawler_process

    def short_desc(self) -> str:
        return "Run a spider as a job: resumable after a crash, one run of a job at a time"

    def process_options(self, args, opts) -> None:
        """An unknown spider or bad spider arguments: one line and exit 2,
        before Scrapy starts (its banner) and before it would log the spider's
        constructor error with a traceback and then fail again on stats."""
        super().process_options(args, opts)
        problem = self._settings().get("FINEWS_ENVIRONMENT_PROBLEM")  # a mistyped environment value
        if problem:
            print(problem, file=sys.stderr, flush=True)
            sys.exit(EXIT_USAGE)
        problem = self._bad_arguments(args[0], opts.spargs) if len(args) == 1 else None
        if problem:
            print(f"scrapy crawl: {problem}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USAGE)
        problem = self._bad_database_uri()
        if problem:
            print(f"scrapy crawl: MONGO_URI: {problem}", file=sys.stderr, flush=True)
            sys.exit(EXIT_FAILED)

    def run(self, args, opts) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider")
        crawler = self._process().create_crawler(args[0])
        configure_job(crawler.settings, args[0], opts.spargs)
        try:
            with job_dir_lock(crawler.settings):  # before anything in the JOBDIR is read or moved
                salvage_job_dir(crawler.settings)
                self._process().crawl(crawler, **opts.spargs)
                self._process().start()
        except JobLocked as locked:
            print(f"scrapy crawl: {locked}", file=sys.stderr, flush=True)
            self.exitcode = EXIT_LOCKED
            return
        if not self._started(crawler):
            self.exitcode = 1
            return
        outcome = crawler.stats.get_value("finews/outcome")
        run = SpiderRun(args[0], opts.spargs, dict(crawler.stats.get_stats()))
        print(summarize([run]), flush=True)
        print(f"outcome: {run.outcome}", flush=True)
        self.exitcode = 1 if self._process().bootstrap_failed else exit_code(outcome)

    def _bad_arguments(self, name: str, arguments: dict) -> str | None:
        loader = spider_loader(self._settings())
        if name not in loader.list():
            return unknown("spider", name, loader.list())
        try:
            check_spider_arguments(loader.load(name), arguments)
        except ValueError as error:
            return f"{name}: {error}"
        return None

    def _bad_database_uri(self) -> str | None:
        """Why ``MONGO_URI`` is not a MongoDB URI, if it is not (exit 1, as
        ``finews`` does for a malformed URI): a crawl would otherwise take the
        text for a host name and spool everything as an outage."""
        uri = self._settings().get("MONGO_URI")
        if not uri:
            return None
        try:
            checked_connect(uri, connect=False).close()
        except InvalidURI as error:
            return str(error)
        return None

    @staticmethod
    def _started(crawler) -> bool:
        """Whether the crawl got as far as having stats (Scrapy raises on
        ``crawler.stats`` before that)."""
        try:
            return crawler.stats is not None
        except RuntimeError:
            return False
