"""The ``$jsonSchema`` validator of ``posts``: what readers may rely on.

Kept field for field in step with ``docs/schema.md`` (a test compares them).
"""

from __future__ import annotations

import logging

from pymongo.errors import CollectionInvalid, OperationFailure

from finews.feeds import TIME_SOURCES
from finews.infocode import MEDIA, ROLLING

logger = logging.getLogger(__name__)

_STRING = {"bsonType": "string"}
_DATE = {"bsonType": "date"}
_STRINGS = {"bsonType": "array", "items": {"bsonType": "string"}}
CODE_PATTERN = "^NW[0-9]{18}$"

POST_PROPERTIES = {
    "_id": {"bsonType": "string", "pattern": CODE_PATTERN},
    "info_code": {"bsonType": "string", "pattern": CODE_PATTERN},
    "kind": {"enum": [MEDIA, ROLLING]},
    "title": {"bsonType": "string", "minLength": 1},
    "published_at": _DATE,
    "media": _STRING,
    "category": _STRING,
    "tags": _STRINGS,
    "body_html": _STRING,
    "body_text": _STRING,
    "url": _STRING,
    "source_url": _STRING,
    "images": _STRINGS,
    "content_hash": {"bsonType": "string", "minLength": 64, "maxLength": 64},
    "version": {"bsonType": ["int", "long"], "minimum": 1},
    "first_seen_at": _DATE,
    "crawled_at": _DATE,
    "updated_at": _DATE,
    "near_duplicates": _STRINGS,
    "time_source": {"enum": list(TIME_SOURCES)},
    "sources": _STRINGS,
}
# Older posts may lack the last two: readers treat a missing time_source as "page".
OPTIONAL = {"updated_at", "near_duplicates", "time_source", "sources"}

POSTS_VALIDATOR = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": sorted(set(POST_PROPERTIES) - OPTIONAL),
        "properties": POST_PROPERTIES,
    }
}


def apply_validator(db, collection: str = "posts") -> None:
    """Create the collection with its validator, or update the validator."""
    try:
        db.create_collection(collection, validator=POSTS_VALIDATOR, validationLevel="strict",
                             validationAction="error")
    except CollectionInvalid:
        try:
            db.command("collMod", collection, validator=POSTS_VALIDATOR, validationLevel="strict",
                       validationAction="error")
        except OperationFailure as error:
            logger.warning("Could not set the posts validator (%s); writes are not schema-checked", error)
