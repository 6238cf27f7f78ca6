"""crossdb: relations between Django models that live in different databases."""

from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.fields import CrossDatabaseForeignKey, CrossDatabaseOneToOneField
from crossdb.m2m import CrossDatabaseManyToManyField

__all__ = [
    "CrossDatabaseForeignKey",
    "CrossDatabaseLimitError",
    "CrossDatabaseManyToManyField",
    "CrossDatabaseOneToOneField",
    "CrossDatabaseQueryError",
]
__version__ = "0.1.0.dev0"
