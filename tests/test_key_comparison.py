"""Keys carried between databases select exactly the rows of the referenced key.

The oracle is computed key by key in Python: a reference holding ``v`` points
at the target row ``t`` when ``v == t`` (exact equality) if the target's
engine compares exactly, and as the target database's own ``exact`` lookup
says otherwise (MySQL/MariaDB ``_ci`` targets on the mysql profile).  Every
path is checked against it: lookups across and ``__in``, the reverse manager,
prefetch, ``order_by`` across, CASCADE and SET_NULL deletes, and
``crossdb_audit --fix``.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossdb import routing, transport
from tests.blog.models import KeyRef
from tests.keys.models import Key, RefToShopKey
from tests.shop.models import KeyNote, ShopKey

pytestmark = pytest.mark.django_db(databases="__all__")

# (source model, CASCADE field, SET_NULL field, target model)
RELATIONS = [
    (KeyRef, "key", "maybe", Key),
    (KeyNote, "key", "maybe", Key),
    (RefToShopKey, "key", "maybe", ShopKey),
]
TWINS = ["ann", "ANN", "ann ", "Ánn", "anne", "a\x00b", "a", "x" * 20, "x" * 21, "b"]
# Outside the generated alphabet, so no collation makes it a twin of a generated key.
ANCHOR = "anchor-row"
KEYS = st.lists(
    st.one_of(st.sampled_from(TWINS), st.text(alphabet="aAÁá \x00x", min_size=1, max_size=22)),
    min_size=1,
    max_size=8,
    unique=True,
)


def alias_of(model):
    return routing.db_for_write(model)


def create_targets(target, codes):
    """Create the target rows the target column can hold and tell apart; return their codes."""
    made = []
    for code in codes:
        try:
            with transaction.atomic(using=alias_of(target)):
                target.objects.create(code=code)
        except (IntegrityError, DatabaseError, ValueError):
            continue  # a collation twin of a made key, or a value the column cannot hold
        made.append(code)
    return made


def holds(model, value):
    field = model._meta.get_field("code")
    connection = connections[alias_of(model)]
    return transport.holds(field, connection, value)


def create_refs(source, field, values, **extra):
    """Write references holding ``values`` behind the integrity check; return the held ones."""
    connection = connections[alias_of(source)]
    column = source._meta.get_field(field)
    kept = [v for v in values if transport.holds(column, connection, v)]
    source.objects.bulk_create([source(**{f"{field}_id": value}, **extra) for value in kept])
    return kept


def target_equal(target, value, code):
    """Return True when ``value`` refers to the target row ``code`` under the target's equality."""
    field = target._meta.get_field("code")
    if not holds(target, value):
        return False
    connection = connections[alias_of(target)]
    if connection.vendor != "mysql" or transport._collation_is_exact(field.db_collation):
        return value == code
    return target.objects.filter(code=value).values_list("code", flat=True).first() == code


def held_values(rows, field):
    """Return the sorted values of ``field`` of ``rows`` (a model or a queryset), NULLs left out."""
    queryset = rows._default_manager.all() if isinstance(rows, type) else rows
    return sorted(queryset.exclude(**{field: None}).values_list(f"{field}_id", flat=True))


@pytest.mark.parametrize("source,field,nullable,target", RELATIONS)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(codes=KEYS, refs=KEYS)
def test_every_path_selects_the_rows_of_the_referenced_key(
    source, field, nullable, target, codes, refs
):
    source.objects.all().delete()
    target.objects.all().delete()
    made = create_targets(target, codes)
    # References the target accepts; on a target that compares by collation
    # only its own spellings (another spelling is the documented crossdb.W003 case).
    exact = transport.target_compares_exactly(source._meta.get_field(field))
    accepted = [v for v in refs if any(target_equal(target, v, c) for c in made)]
    held = create_refs(source, field, accepted if exact else [v for v in accepted if v in made])
    chosen = made[0] if made else None
    if chosen is None:
        return
    expected = sorted(v for v in held if target_equal(target, v, chosen))

    # __in with the key itself, and the lookup across.
    assert held_values(source.objects.filter(**{f"{field}__in": [chosen]}), field) == expected
    source_column = source._meta.get_field(field)
    if transport.holds(source_column, connections[alias_of(source)], chosen):
        # key__code is Django's lookup on the local column (no join to trim):
        # a value that column cannot hold raises there as it does in Django.
        across = source.objects.filter(**{f"{field}__code": chosen})
        assert held_values(across, field) == expected
    # The reverse manager and its prefetch.
    row = target.objects.get(code=chosen)
    manager = getattr(row, source._meta.get_field(field).remote_field.get_accessor_name())
    assert sorted(manager.values_list(f"{field}_id", flat=True)) == expected
    prefetched = target.objects.prefetch_related(
        source._meta.get_field(field).remote_field.get_accessor_name()
    ).get(code=chosen)
    assert (
        sorted(
            getattr(ref, f"{field}_id")
            for ref in getattr(
                prefetched, source._meta.get_field(field).remote_field.get_accessor_name()
            ).all()
        )
        == expected
    )
    # order_by across names every row once.
    assert sorted(
        source.objects.order_by(f"{field}__code").values_list(f"{field}_id", flat=True)
    ) == sorted(held)

    # CASCADE and SET_NULL, each on rows of its own: the CASCADE field's rows
    # point at the generated keys; the SET_NULL field's rows hang, by their
    # CASCADE field, off an anchor row that the delete leaves alone, so a
    # SET_NULL that misses a row (or nulls another key's) shows.
    source.objects.all().delete()
    target.objects.create(code=ANCHOR)
    held = create_refs(source, field, held)
    nulled = create_refs(source, nullable, held, **{f"{field}_id": ANCHOR})
    # The oracle asks the target database on a _ci target: ask before the delete.
    points = {v: target_equal(target, v, chosen) for v in {*held, *nulled}}
    row.delete()
    cascaded = source.objects.exclude(**{f"{field}_id": ANCHOR})
    assert held_values(cascaded, field) == sorted(v for v in held if not points[v])
    anchored = source.objects.filter(**{f"{field}_id": ANCHOR})
    assert held_values(anchored, nullable) == sorted(v for v in nulled if not points[v])
    assert anchored.filter(**{nullable: None}).count() == sum(1 for v in nulled if points[v])
    assert target.objects.filter(code=ANCHOR).exists()


def audit(model, fix=False):
    out = StringIO()
    try:
        call_command("crossdb_audit", model=[model._meta.label], fix=fix, stdout=out)
    except CommandError:
        return 1, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize("source,field,nullable,target", RELATIONS)
def test_audit_checks_collation_twins_each_and_fix_touches_only_dangling_rows(
    source, field, nullable, target
):
    made = create_targets(target, ["ann", "ANN", "ann ", "Ánn"])
    create_refs(source, field, made)
    assert audit(source)[0] == 0
    # "ANN" (or whichever twin the target kept second) loses its target row.
    doomed = made[-1]
    target.objects.filter(code=doomed)._raw_delete(alias_of(target))
    status, output = audit(source)
    assert status == 1, output
    fixed = audit(source, fix=True)
    assert fixed[0] == 0, fixed[1]
    assert held_values(source, field) == sorted(made[:-1])
