"""Many-to-many relations across databases: ``CrossDatabaseManyToManyField``."""

from crossdb.m2m.field import CrossDatabaseManyToManyField, is_crossdb_many_to_many

__all__ = ["CrossDatabaseManyToManyField", "is_crossdb_many_to_many"]
