"""The ``$jsonSchema`` validator of ``posts`` and the upgrade of older posts:
storage for the post model declared in ``finews/core/model.py``.

The validator is ``moderate``: a new post and an update of a valid post are
checked, but an update of a post stored before a required field existed is
not, so older posts keep taking ``crawled_at`` and revisions until ``migrate``
(``finews migrate``) gives them the new field. With ``strict``, adding a
required field would make MongoDB refuse every update of every older post.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import CollectionInvalid, OperationFailure

from finews.core import model
from finews.storage.doctypes import Db

logger = logging.getLogger(__name__)

POSTS_VALIDATOR = model.validator()
POST_PROPERTIES = POSTS_VALIDATOR["$jsonSchema"]["properties"]


def apply_validator(db: Db, collection: str = "posts") -> None:
    """Create the collection with its validator, or update the validator."""
    validation: dict[str, Any] = {"validator": model.validator(), "validationLevel": "moderate",
                                  "validationAction": "error"}
    try:
        db.create_collection(collection, **validation)
    except CollectionInvalid:
        try:
            db.command("collMod", collection, **validation)
        except OperationFailure as error:
            logger.warning("Could not set the posts validator (%s); writes are not schema-checked", error)


def migrate(db: Db, collection: str = "posts") -> dict[int, int]:
    """Bring posts of older schema versions to the current one, a version at
    a time: {version reached: posts upgraded}. Idempotent; safe while crawls run
    (a post written meanwhile is already current and is not matched)."""
    upgraded: dict[int, int] = {}
    posts = db[collection]
    for version in range(2, model.SCHEMA_VERSION + 1):
        older = {"$or": [{"schema_version": {"$exists": False}}, {"schema_version": {"$lt": version}}]}
        for name, value in model.upgrade(version).items():
            if name != "schema_version":  # a value a post already has is kept
                posts.update_many({"$and": [older, {name: {"$exists": False}}]}, {"$set": {name: value}})
        result = posts.update_many(older, {"$set": {"schema_version": version}})
        if result.modified_count:
            upgraded[version] = result.modified_count
            logger.info("Upgraded %d posts to schema version %d", result.modified_count, version)
    return upgraded
