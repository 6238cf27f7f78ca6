"""The swapped-mode harness: its categories are checked against the tracebacks."""

from tests.djangosuite import swapped

REFUSED = """ERROR: test_a (m.tests.T.test_a)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/x/django/db/models/query.py", line 1, in annotate
    x
crossdb.exceptions.CrossDatabaseQueryError: m.Book: 'author__age' reaches across
"""
COUNTED = """FAIL: test_b (m.tests.T.test_b)
----------------------------------------------------------------------
AssertionError: 2 != 1 : 2 queries executed, 1 expected
"""
CONSTRAINT = """FAIL: test_c (m.tests.T.test_c)
----------------------------------------------------------------------
AssertionError: IntegrityError not raised
"""
DIFFERENT = """FAIL: test_d (m.tests.T.test_d)
----------------------------------------------------------------------
AssertionError: Lists differ: [1] != [1, 1]
"""


def test_blocks_are_read_per_test_from_unittests_output():
    output = "\n".join(f"{'=' * 70}\n{block}" for block in (REFUSED, COUNTED))
    output += f"{'-' * 70}\nRan 2 tests in 1s\n\nFAILED (errors=2)\n"
    found = swapped.blocks(output)
    assert sorted(found) == ["m.tests.T.test_a", "m.tests.T.test_b"]
    assert "Ran 2 tests" not in found["m.tests.T.test_b"]


def test_each_category_is_read_from_the_traceback():
    assert swapped.classify(REFUSED) == {
        "category": "refusal",
        "docs": "limitations.rst#cross-expressions",
        "detail": "m.Book: 'author__age' reaches across",
    }
    assert swapped.classify(COUNTED) == {"category": "query-count"}
    assert swapped.classify(CONSTRAINT) == {"category": "no-constraint"}
    assert swapped.classify(DIFFERENT) is None  # a different answer: a bug


def test_an_entry_that_does_not_match_its_failure_is_an_error():
    refusal = {"category": "refusal", "docs": "limitations.rst#cross-expressions"}
    assert swapped.check_entry("t", refusal, REFUSED) is None
    assert "is query-count" in swapped.check_entry("t", refusal, COUNTED)
    assert "a bug" in swapped.check_entry("t", refusal, DIFFERENT)
    assert "no such section" in swapped.check_entry(
        "t", {**refusal, "docs": "limitations.rst#nowhere"}, REFUSED
    )
    assert "unknown category" in swapped.check_entry("t", {"category": "slow"}, DIFFERENT)


def test_open_entries_need_an_issue_and_a_cause():
    assert swapped.check_entry("t", {"category": "open", "issue": "#15", "cause": "x"}, "") is None
    assert swapped.check_entry("t", {"category": "open", "cause": "x"}, DIFFERENT)


def test_every_refusal_section_is_a_label_of_the_docs():
    for section, _pattern in swapped.REFUSAL_SECTIONS:
        assert swapped.docs_anchor_exists(f"limitations.rst#{section}"), section


def test_the_stand_in_builds_crossdbs_class_for_test_apps_and_djangos_for_django():
    from django.db import models

    from crossdb import CrossDatabaseForeignKey
    from tests.djangosuite.wrapper import _SwappedRelation

    stand_in = _SwappedRelation(models.ForeignKey, "CrossDatabaseForeignKey")
    field = stand_in("auth.User", models.CASCADE)
    # crossdb's class under Django's name, so Django's messages naming the
    # field's class read as the suite expects; it deconstructs to crossdb's path.
    assert type(field).__mro__[1] is CrossDatabaseForeignKey
    assert type(field).__name__ == "ForeignKey"
    assert field.deconstruct()[1] == "crossdb.CrossDatabaseForeignKey"
    namespace = {"__name__": "django.contrib.fake", "stand_in": stand_in, "models": models}
    exec("field = stand_in('auth.User', models.CASCADE)", namespace)
    assert type(namespace["field"]) is models.ForeignKey
    assert isinstance(field, stand_in) and issubclass(CrossDatabaseForeignKey, stand_in)
    # assertEqual(type(field), models.ForeignKey) in the suite compares with ==.
    assert type(field) == stand_in and models.ForeignKey == stand_in  # noqa: E721

    class Own(stand_in):  # a test app's own subclass keeps Django's base
        pass

    assert Own.__mro__[1] is models.ForeignKey
