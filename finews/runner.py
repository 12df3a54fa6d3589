"""Run several spiders one after another in this process and report.

Scrapy's reactor runs once per process, so this is the single place that
starts it; the CLI commands call ``run_spiders`` once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from scrapy.crawler import CrawlerRunner
from scrapy.settings import Settings
from scrapy.utils.log import configure_logging
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor

from finews.jobs import configure_job

logger = logging.getLogger(__name__)

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


@dataclass
class SpiderRun:
    spider: str
    arguments: dict
    stats: dict = field(default_factory=dict)

    def stat(self, key: str, default=0):
        return self.stats.get(key, default)

    @property
    def rejected(self) -> dict[str, int]:
        prefix = "finews/rejected/"
        return {k[len(prefix):]: v for k, v in self.stats.items() if k.startswith(prefix)}

    @property
    def outcome(self) -> str:
        return self.stats.get("finews/outcome") or "failed"

    @property
    def pages(self) -> int:
        return self.stat("response_received_count")

    @property
    def seconds(self) -> float:
        return float(self.stat("elapsed_time_seconds", 0.0))


def project_settings(overrides: dict | None = None) -> Settings:
    settings = get_project_settings()
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


def run_spiders(jobs: list[tuple[str, dict]], settings: Settings) -> list[SpiderRun]:
    """Run ``(spider name, arguments)`` jobs in order; return their stats."""
    install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import defer, reactor

    configure_logging(settings)
    runner = CrawlerRunner(settings)
    runs: list[SpiderRun] = []
    failure: list[BaseException] = []

    @defer.inlineCallbacks
    def chain():
        try:
            for name, arguments in jobs:
                crawler = runner.create_crawler(name)
                configure_job(crawler.settings, name, arguments)
                run = SpiderRun(name, arguments)
                runs.append(run)
                yield runner.crawl(crawler, **arguments)
                run.stats = dict(crawler.stats.get_stats())
        except Exception as exc:  # reported after the reactor stops
            failure.append(exc)
        finally:
            reactor.stop()

    reactor.callWhenRunning(chain)
    reactor.run()
    if failure:
        raise failure[0]
    return runs
