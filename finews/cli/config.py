"""``finews.toml``: the jobs of a scheduled run, the database and the schedule.

    [database]
    uri = "mongodb://mongo:27017/"     # MONGO_URI overrides; unset: embedded server
    name = "finews"                    # MONGO_DATABASE overrides

    [run]
    data_dir = "var"                   # FINEWS_DATA_DIR overrides; database in FINEWS_DB_PATH or data_dir/db
    every = "5m"                       # FINEWS_EVERY overrides; used by `finews run --every`

    [[jobs]]
    spider = "category"
    site = "https://finews.withounder.com"
    categories = ["hebeiribao", "emnews"]   # omitted: every category on the home page

    [[jobs]]
    spider = "newsshare"
    site = "http://finews.zning.xyz"
    codes_file = "codes.txt"

    [settings]                         # Scrapy's own setting names, or crawler/settings.py's
    CONCURRENT_REQUESTS = 8

A key this module does not know is an error, not a silent default: a typo of
``uri`` would otherwise crawl into an embedded database. Spider arguments and
``[settings]`` names are checked against Scrapy by ``crawler.runner.check_config``.
The format is documented in docs/operations.md; ``finews.example.toml`` runs
the three spiders against ``finews replica --port 8000``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crawler.jobs import ConfigError, unknown
from finews.core.environment import BadValue, interval_seconds

DEFAULT_JOBS = [{"spider": "category"}]
# The keys of each table; [[jobs]] and [settings] are checked against Scrapy.
SECTIONS = {"database": {"uri", "name"}, "run": {"data_dir", "every"}, "jobs": None, "settings": None}
# Set by [database] and [run], so not accepted in [settings].
RESERVED_SETTINGS = {"MONGO_URI": "[database] uri", "MONGO_DATABASE": "[database] name",
                     "FINEWS_DATA_DIR": "[run] data_dir", "FINEWS_DB_PATH": "[run] data_dir"}


@dataclass
class Job:
    spider: str
    arguments: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    jobs: list[Job]
    mongo_uri: str | None = None
    database: str = "finews"
    data_dir: str = "var"
    every: float | None = None
    settings: dict = field(default_factory=dict)
    db_path_override: str | None = None  # FINEWS_DB_PATH

    @property
    def db_path(self) -> Path:
        """The embedded database folder: ``FINEWS_DB_PATH``, else DATA_DIR/db."""
        return Path(self.db_path_override or Path(self.data_dir) / "db")

    def scrapy_settings(self) -> dict:
        return {**self.settings, "MONGO_URI": self.mongo_uri, "MONGO_DATABASE": self.database,
                "FINEWS_DATA_DIR": self.data_dir, "FINEWS_DB_PATH": str(self.db_path)}


def parse_interval(text: str | int | float | None) -> float | None:
    """Seconds in ``"5m"``, ``"90s"``, ``"1h"`` or a bare number of seconds."""
    if text is None or text == "":
        return None
    try:
        return interval_seconds(text)
    except BadValue as wanted:
        raise ConfigError(f"the interval must be {wanted}, got {text!r}") from None


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    data = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no config file at {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
    _check_keys(data)
    database, run = data.get("database", {}), data.get("run", {})
    jobs = [_job(entry, number) for number, entry in enumerate(data.get("jobs") or DEFAULT_JOBS, start=1)]
    return Config(
        jobs=jobs,
        mongo_uri=env.get("MONGO_URI") or database.get("uri") or None,
        database=env.get("MONGO_DATABASE") or database.get("name") or "finews",
        data_dir=env.get("FINEWS_DATA_DIR") or run.get("data_dir") or "var",
        every=parse_interval(env.get("FINEWS_EVERY") or run.get("every")),
        settings=dict(data.get("settings", {})),
        db_path_override=env.get("FINEWS_DB_PATH") or None,
    )


def _check_keys(data: dict) -> None:
    for section, value in data.items():
        if section not in SECTIONS:
            raise ConfigError(unknown("section", section, SECTIONS))
        keys = SECTIONS[section]
        if section == "jobs":
            if not isinstance(value, list):
                raise ConfigError("jobs must be a list of [[jobs]] tables")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key, item in value.items():
            if keys is not None and key not in keys:
                raise ConfigError(f"[{section}]: {unknown('key', key, keys)}")
            if keys is not None and not isinstance(item, str) and not (key == "every" and _is_number(item)):
                raise ConfigError(f"[{section}] {key} must be a string, got {item!r}")
            if section == "settings" and key in RESERVED_SETTINGS:
                raise ConfigError(f"{key} cannot be set in [settings]: use {RESERVED_SETTINGS[key]}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _job(entry: dict, number: int) -> Job:
    if not isinstance(entry, dict) or not isinstance(entry.get("spider"), str) or not entry["spider"]:
        raise ConfigError(f"job {number}: every [[jobs]] needs spider = \"NAME\"")
    arguments = {}
    for key, value in entry.items():
        if key == "spider":
            continue
        if isinstance(value, dict):
            raise ConfigError(f"job {number} ({entry['spider']}): {key} must be a value or a list, not a table")
        arguments[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return Job(entry["spider"], arguments)
