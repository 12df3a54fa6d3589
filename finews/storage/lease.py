"""A lease lock in MongoDB: one holder per key, renewed while it works,
expiring if its holder dies without releasing it.

Taking a lease is one write that only one caller can win: inserting the
key as ``_id`` (the unique index refuses every other inserter), or, for a
stale lease, an update conditional on the exact holder and expiry that were
judged stale (once one taker has changed them, no other update matches).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from finews.core.retry import LEASE
from finews.storage.doctypes import Db, Doc
from finews.storage.process import alive

LOCKS = "locks"


class Lease:
    def __init__(self, db: Db, key: str, owner: str, ttl_seconds: float):
        self.collection = db[LOCKS]
        self.key = key
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_seconds)
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def _claim(self, now: datetime) -> Doc:
        return {"owner": self.owner, "host": self.host, "pid": self.pid, "acquired_at": now,
                "expires_at": now + self.ttl, "ttl_seconds": self.ttl.total_seconds()}

    def acquire(self) -> Doc | None:
        """Take the lease; returns None when it is held, else what it took over
        (an empty dict for a free lease, the previous holder for a stale one).

        A lease is stale when it expired, or when its holder ran on this host
        under a process id that no longer exists (killed with -9).
        """
        for _ in range(LEASE.acquire_attempts):  # a lease released between our insert and our read: try again
            now = datetime.now(UTC)
            try:
                self.collection.insert_one({"_id": self.key, **self._claim(now)})
                return {}
            except DuplicateKeyError:
                pass
            previous = self.collection.find_one({"_id": self.key})
            if previous is None:
                continue
            if previous.get("owner") == self.owner:
                return {} if self.renew() else None
            stale = _aware(previous["expires_at"]) < now or (
                previous.get("host") == self.host and not alive(previous.get("pid", 0)))
            if not stale:
                return None
            taken = self.collection.find_one_and_update(
                {"_id": self.key, "owner": previous.get("owner"), "expires_at": previous["expires_at"]},
                {"$set": self._claim(now)}, return_document=ReturnDocument.AFTER,
            )
            return previous if taken is not None and taken.get("owner") == self.owner else None
        return None

    def renew(self) -> bool:
        """Extend the lease; False when another run holds it now."""
        now = datetime.now(UTC)
        result = self.collection.update_one({"_id": self.key, "owner": self.owner},
                                            {"$set": {"expires_at": now + self.ttl}})
        return result.matched_count == 1

    def release(self) -> None:
        self.collection.delete_one({"_id": self.key, "owner": self.owner})

    def holder(self) -> Doc | None:
        return self.collection.find_one({"_id": self.key})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
