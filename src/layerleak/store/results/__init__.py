"""The results database (see :mod:`layerleak.store.results.db`)."""

from layerleak.store.results.db import DatabaseError, ImageRecord, ResultsDB, database_url

__all__ = ["DatabaseError", "ImageRecord", "ResultsDB", "database_url"]
