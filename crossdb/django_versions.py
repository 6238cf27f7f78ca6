"""What differs between the Django releases crossdb supports (5.2 LTS, 6.0, 6.1).

The rest of crossdb is written against what the three releases share; each
difference it has to know about lives here, named after what differs, and
``tests/test_seams.py`` pins which release provides what, so a new release
that moves one of them fails there first.

- ``select_related()`` with no arguments is deprecated from Django 6.1
  (``RemovedInDjango2028Warning``, raised only for callers outside Django, so
  the admin changelist's own call stays silent).  crossdb wraps
  ``QuerySet.select_related``; calling Django's no-argument form from the
  wrapper would attribute the warning to crossdb, on every call, the admin's
  included.  ``select_related_everything`` sets the same flag without that
  call and warns exactly when Django would: for a caller outside Django.
- The empty choice of a select reads ``---------`` up to Django 6.0 and
  ``- Select an option -`` from 6.1 (``BLANK_CHOICE_LABEL``, or the dashes
  again under the deprecated ``USE_BLANK_CHOICE_DASH`` setting).
- Django 6.1 gives querysets a fetch mode (``QuerySet.fetch_mode()``), which
  ``select_related()`` copies onto the related instances it loads.
  ``same_fetch_mode`` gives crossdb's far queryset the outer one's (nothing
  before 6.1).
- ``SQLCompiler.quote_name_unless_alias()`` is deprecated from Django 6.1
  in favour of ``SQLCompiler.quote_name()``; ``quote_alias`` calls whichever
  the release has, so a derived table's alias is quoted as Django quotes the
  ``Col`` that reads it.
- An aggregate's ``filter=`` is kept as the ``Q`` given up to Django 5.2 and
  wrapped in an ``AggregateFilter`` expression from 6.0;
  ``aggregate_condition`` returns the ``Q`` on every release.

``ForwardManyToOneDescriptor.get_queryset`` takes ``**hints`` up to 6.0 and a
keyword-only ``instance`` from 6.1 (which also applies the instance's fetch
mode); crossdb always calls it as ``get_queryset(instance=...)``, which both
accept, so it needs no entry here.
"""

from __future__ import annotations

import django
from django.db.models import QuerySet
from django.db.models import fields as model_fields

try:  # Django 6.1
    from django.db.models.utils import get_blank_choice_label
except ImportError:  # Django 5.2, 6.0
    get_blank_choice_label = None

try:  # Django 6.1
    from django.utils.deprecation import RemovedInDjango2028Warning, warn_about_external_use
except ImportError:  # Django 5.2, 6.0
    warn_about_external_use = None

#: Whether Django warns about ``select_related()`` without arguments (6.1 on).
SELECT_RELATED_WITHOUT_FIELDS_DEPRECATED = django.VERSION[:2] >= (6, 1)

# Django's message, word for word, so that filters written for Django's own warning match.
_SELECT_RELATED_MESSAGE = (
    "Calling select_related() with no arguments is deprecated. Specify the fields to fetch instead."
)
# Frames skipped to find the caller Django's warning is about: crossdb's
# wrapper, then Django's managers (``Post.objects.select_related()``).
_SELECT_RELATED_CALL_FRAMES = ("crossdb.query_select.", "django.db.models.")


def select_related_everything(original, queryset):
    """Return ``queryset.select_related()`` (every non-null relation) through ``original``."""
    # select_related(None) makes the clone and runs Django's checks (values(),
    # combined queries) first, so they raise before the warning, as in Django;
    # True is what the no-argument form sets on every release.
    clone = original(queryset, None)
    if SELECT_RELATED_WITHOUT_FIELDS_DEPRECATED:
        warn_about_external_use(
            _SELECT_RELATED_MESSAGE,
            category=RemovedInDjango2028Warning,
            skip_name_prefixes=_SELECT_RELATED_CALL_FRAMES,
        )
    clone.query.select_related = True
    return clone


def blank_choice_label() -> str:
    """Return the label of a select's empty choice, as this Django renders it."""
    if get_blank_choice_label is not None:
        return str(get_blank_choice_label())
    dashes = model_fields.BLANK_CHOICE_DASH[0][1]
    return str(getattr(model_fields, "BLANK_CHOICE_LABEL", dashes))


FETCH_MODES = hasattr(QuerySet, "fetch_mode")


def same_fetch_mode(queryset, like):
    """Return ``queryset`` with the fetch mode of ``like`` (Django 6.1); else itself."""
    if not FETCH_MODES:
        return queryset
    return queryset.fetch_mode(like._fetch_mode)


def quote_alias(compiler, name: str) -> str:
    """Return ``name`` (a table alias) quoted as the compiler quotes aliases in columns."""
    quote = getattr(compiler, "quote_name", None)  # Django 6.1
    if quote is None:
        quote = compiler.quote_name_unless_alias  # Django 5.2, 6.0
    return quote(name)


try:  # Django 6.0+
    from django.db.models.aggregates import AggregateFilter
except ImportError:  # Django 5.2
    AggregateFilter = None


def aggregate_condition(aggregate):
    """Return the ``Q`` (or expression) given as ``aggregate``'s ``filter=``, or None."""
    condition = aggregate.filter
    if AggregateFilter is not None and isinstance(condition, AggregateFilter):
        return condition.condition
    return condition


#: Django 6.1: many-to-many managers' set() goes through set_base(raw=...),
#: which the deserializer calls directly (loaddata); pinned in tests/test_seams.py.
MANY_TO_MANY_SET_BASE = django.VERSION[:2] >= (6, 1)
