"""A lease lock in MongoDB: one holder per key, renewed while it works,
expiring if its holder dies without releasing it."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from finews.process import alive

LOCKS = "locks"


class Lease:
    def __init__(self, db, key: str, owner: str, ttl_seconds: float):
        self.collection = db[LOCKS]
        self.key = key
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_seconds)
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def acquire(self) -> dict | None:
        """Take the lease; returns None when it is held, else what it took over
        (an empty dict for a free lease, the previous holder for a stale one).

        A lease is stale when it expired, or when its holder ran on this host
        under a process id that no longer exists (killed with -9).
        """
        now = datetime.now(timezone.utc)
        previous = self.collection.find_one({"_id": self.key})
        stale = previous is not None and (
            _aware(previous["expires_at"]) < now
            or (previous.get("host") == self.host and not alive(previous.get("pid", 0)))
        )
        match = {"_id": self.key}
        if previous is not None:
            if not stale and previous.get("owner") != self.owner:
                return None
            match["owner"] = previous.get("owner")  # take over exactly what we judged stale
        try:
            self.collection.find_one_and_update(
                match,
                {"$set": {"owner": self.owner, "host": self.host, "pid": self.pid, "acquired_at": now,
                          "expires_at": now + self.ttl}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # someone else took it between our read and our write
        return previous if stale else {}

    def renew(self) -> bool:
        now = datetime.now(timezone.utc)
        result = self.collection.update_one({"_id": self.key, "owner": self.owner},
                                            {"$set": {"expires_at": now + self.ttl}})
        return result.matched_count == 1

    def release(self) -> None:
        self.collection.delete_one({"_id": self.key, "owner": self.owner})

    def holder(self) -> dict | None:
        return self.collection.find_one({"_id": self.key})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

