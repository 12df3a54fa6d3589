"""Scrapy settings for finews.

Values that differ between machines come from the environment (see
``docs/operations.md``); nothing secret is written here.
"""

from finews.core import environment, retry

# A mistyped environment value (finews/core/environment.py): the one line that
# `scrapy crawl` and every `finews` command print before exiting 2. The values
# below fall back to their defaults meanwhile; nothing runs on them.
FINEWS_ENVIRONMENT_PROBLEM = environment.problem()
_env = environment.value


BOT_NAME = "finews"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = "finews/0.1 (news archive crawler)"
ROBOTSTXT_OBEY = True

# Politeness and resilience. AutoThrottle adapts to the real hosts' latency;
# the loopback replica answers fast enough that it stays out of the way.
CONCURRENT_REQUESTS = _env("FINEWS_CONCURRENT_REQUESTS")
CONCURRENT_REQUESTS_PER_DOMAIN = _env("FINEWS_CONCURRENT_REQUESTS_PER_DOMAIN")
# A post page yields one item, and Scrapy starts this many worker tasks for
# every callback's output (default 100): one is all a page needs
# (bench/framework_overhead.py counts the tasks).
CONCURRENT_ITEMS = 1
# Scrapy's check that a generator callback returns no value re-reads and
# re-parses the callback's source (ast) per response when its cache misses:
# 16% of the crawl's CPU in a profile (issue 23). It only logs a warning (a
# returned value is dropped either way) and no finews callback returns one.
WARN_ON_GENERATOR_RETURN_VALUE = False
DOWNLOAD_DELAY = _env("FINEWS_DOWNLOAD_DELAY")
DOWNLOAD_TIMEOUT = _env("FINEWS_DOWNLOAD_TIMEOUT")
DOWNLOAD_MAXSIZE = _env("FINEWS_DOWNLOAD_MAXSIZE")
RETRY_ENABLED = True
RETRY_TIMES = _env("FINEWS_RETRY_TIMES")
RETRY_HTTP_CODES = list(retry.HTTP.codes)  # finews/core/retry.py says why these
FINEWS_RETRY_AFTER_MAX = _env("FINEWS_RETRY_AFTER_MAX")
DOWNLOAD_FAIL_ON_DATALOSS = True
# A <meta http-equiv=refresh> in an article body must not redirect the crawl;
# no page of the site needs it.
METAREFRESH_ENABLED = False
# Damaged pages are retried from callbacks with get_retry_request, which
# carries the retry count in meta on purpose.
META_COPY_WARN_SKIP_KEYS = ["retry_times"]
AUTOTHROTTLE_ENABLED = _env("FINEWS_AUTOTHROTTLE")
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = _env("FINEWS_AUTOTHROTTLE_TARGET")
TELNETCONSOLE_ENABLED = False
# Scrapy's remote-control HTTP server runs code sent to it and leaves its
# token file behind when the crawl is killed; on only when asked for.
REMOTE_CONTROL_ENABLED = _env("FINEWS_REMOTE_CONTROL")
COOKIES_ENABLED = False

SPIDER_MIDDLEWARES = {
    "crawler.middlewares.SkipKnownPostsMiddleware": 950,
    # Closest to the spider: an exception a callback raises becomes that page's reject.
    "crawler.callbacks.CallbackErrorsMiddleware": 990,
}
# StayOnSite at 650 sees responses before RedirectMiddleware (600) follows
# them; RetryAfter at 560 sees them before RetryMiddleware (550).
DOWNLOADER_MIDDLEWARES = {
    # Scrapy's offsite filter drops requests without calling their errback
    # (a post lost in silence); StayOnSite refuses them through the errback.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    # robots.txt as Scrapy obeys it, an unreachable one logged in one line, not a traceback.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.RobotsTxtMiddleware": 100,
    "crawler.middlewares.StayOnSiteMiddleware": 650,
    "crawler.middlewares.RetryAfterMiddleware": 560,
    # Scrapy's, with a body too large to read named download_too_large.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "crawler.middlewares.DecompressionLimit": 590,
}
# Only http and https are ever fetched (crawler/scope.py refuses the rest
# first); without these handlers a file:, ftp:, s3: or data: URL cannot be read.
DOWNLOAD_HANDLERS = {"file": None, "s3": None, "ftp": None, "data": None}
# No duplicate filter: SkipKnownPostsMiddleware decides what to fetch, and a
# resumed job (JOBDIR) must not skip a URL whose post was never stored.
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"
# Scrapy's scheduler, with a JOBDIR queue that fails (a full disk) ending the crawl as failed.
SCHEDULER = "crawler.scheduler.JobScheduler"
SCHEDULER_DISK_QUEUE = "crawler.scheduler.PickleLifoDiskQueue"  # Scrapy's, naming callbacks cheaply

EXTENSIONS = {
    "crawler.extensions.RunRecord": 500,
}
COMMANDS_MODULE = "crawler.commands"

ITEM_PIPELINES = {
    "pipelines.clean.CleanPipeline": 100,
    "pipelines.normalize.NormalizePipeline": 200,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.mongo.MongoPipeline": 400,
}

# Storage. With MONGO_URI unset an embedded server is started on FINEWS_DB_PATH,
# else $FINEWS_DATA_DIR/db, resolved when the crawler is built (so -s moves it too:
# finews.core.environment.data_paths).
MONGO_URI = _env("MONGO_URI")
MONGO_DATABASE = _env("MONGO_DATABASE")
MONGO_BATCH_SIZE = _env("MONGO_BATCH_SIZE")
MONGO_RETRY_ATTEMPTS = _env("MONGO_RETRY_ATTEMPTS")
MONGO_RETRY_MAX_WAIT = _env("MONGO_RETRY_MAX_WAIT")
MONGO_TIMEOUT_MS = _env("MONGO_TIMEOUT_MS")
MONGO_OUTAGE_COOLDOWN = _env("MONGO_OUTAGE_COOLDOWN")
MONGO_MAX_PENDING_BATCHES = _env("MONGO_MAX_PENDING_BATCHES")
# A post larger than this (BSON bytes) is kept as a too_large reject, not written.
MONGO_MAX_DOCUMENT_BYTES = _env("MONGO_MAX_DOCUMENT_BYTES")
FINEWS_NEAR_DUPLICATES = _env("FINEWS_NEAR_DUPLICATES")
# Near-duplicate signatures computed in a child process (0: in the crawl's own).
FINEWS_SIGNING_PROCESS = _env("FINEWS_SIGNING_PROCESS")
FINEWS_DATA_DIR = _env("FINEWS_DATA_DIR")
FINEWS_DB_PATH = _env("FINEWS_DB_PATH")

# Listing pages found by earlier runs are read by every category run, and to
# their last page once this many seconds have passed since their last sweep.
FINEWS_LISTING_SWEEP_SECONDS = _env("FINEWS_LISTING_SWEEP_SECONDS")

# Runs of one job never overlap; a lease left by a killed run expires after
# this many seconds (at once if its process is gone from this host).
FINEWS_LOCK_TTL = _env("FINEWS_LOCK_TTL")
# Scale-out: with a Redis URL, every process running the same job shares one
# request queue and seen-set (crawler/scheduler.py); a worker's heartbeat
# key expires this many seconds after it dies.
FINEWS_REDIS_URL = _env("FINEWS_REDIS_URL")
FINEWS_REDIS_WORKER_TTL = _env("FINEWS_REDIS_WORKER_TTL")
# How often an idle worker looks for its peers' requests (Scrapy's own: 5 s).
FINEWS_REDIS_POLL = _env("FINEWS_REDIS_POLL")
# Each job keeps Scrapy's JOBDIR under $FINEWS_DATA_DIR/jobs/ to resume after a crash.
FINEWS_RESUMABLE = _env("FINEWS_RESUMABLE")

LOG_LEVEL = _env("FINEWS_LOG_LEVEL")
FEED_EXPORT_ENCODING = "utf-8"
LOG_FORMATTER = "crawler.logformatter.FinewsLogFormatter"
