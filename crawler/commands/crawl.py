"""``scrapy crawl``, with what a scheduled job needs: resumable state per job
in the data folder, and an exit code that says how the run went."""

from __future__ import annotations

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError

from finews.jobs import configure_job, exit_code


class Command(ScrapyCrawl):
    def short_desc(self) -> str:
        return "Run a spider as a job: resumable after a crash, one run of a job at a time"

    def run(self, args, opts) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider")
        crawler = self._create_crawler(args[0])
        configure_job(crawler.settings, args[0], opts.spargs)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        outcome = crawler.stats.get_value("finews/outcome") if crawler.stats else None
        self.exitcode = 1 if self.crawler_process.bootstrap_failed else exit_code(outcome)

