"""Type names for the storage layer's annotations: a MongoDB document as
pymongo returns it, and the database handle the store functions take."""

from __future__ import annotations

from typing import Any, TypeAlias

from pymongo.database import Database

Doc: TypeAlias = dict[str, Any]
Db: TypeAlias = Database[Doc]
