"""Mode 2, "fields swapped": the expectations file and its categories.

Every ForeignKey/OneToOneField of the suite's test apps is crossdb's (one
database, see wrapper.py). A test may fail only if
``expectations/django-<X.Y>-swapped.json`` lists it with one of:

- ``refusal``: crossdb raised ``CrossDatabaseQueryError``; ``docs`` names the
  section of the documentation that lists the refusal
  (``limitations.rst#cross-aggregates``), which must exist;
- ``query-count``: ``assertNumQueries`` counted a different number (the far
  side is its own query);
- ``sql-text``: an assertion on the SQL text (``str(qs.query)``, captured SQL);
- ``no-constraint``: an ``IntegrityError`` Django expects from a database
  foreign key constraint, which crossdb's fields do not create;
- ``open``: a known bug, with ``issue`` (``#15``) and ``cause``; accepted but
  printed as open.

Each category is checked against the failure's traceback, so an entry cannot
hide a different answer or a crash. Anything :func:`classify` cannot
classify is a bug.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
CATEGORIES = ("refusal", "query-count", "sql-text", "no-constraint", "open")

BLOCK_SEPARATOR = re.compile(r"^={70}$", re.M)
FAILURE_HEADER = re.compile(r"^(?:FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \(([\w.]+)\)")
# Raised, or caught by the test and shown in its assertion (assertIs(exc, ...)).
REFUSAL = re.compile(
    r"^crossdb\.exceptions\.CrossDatabase\w*Error: (.*)$"
    r"|^AssertionError: CrossDatabase\w*Error\((.*)$",
    re.M,
)

# The refusal's documentation section, from what the traceback shows; first match wins.
REFUSAL_SECTIONS = [
    (
        "cross-many-to-many",
        re.compile(
            r"ManyRelatedManager|related_descriptors\.py\", line \d+, in (_add_items|_remove_items"
            r"|_clear|set)\b|relation [\w.]+\.\+ into|m2m_\w+\.\w+ on database|ManyToManyField"
        ),
    ),
    ("cross-raw-sql", re.compile(r"Raw SQL ['\"].*['\"] names the table")),
    ("cross-subqueries", re.compile(r"OuterRef|is used as a subquery|Subquery|Exists\(")),
    (
        "cross-multi-valued",
        re.compile(r"is used as an expression|must hold for the same related row"),
    ),
    ("cross-values", re.compile(r"values\('[^']*'\) reads a column of another database")),
    (
        "cross-ordering",
        re.compile(
            r"in (order_by|add_ordering|get_order_by|earliest|latest|_earliest)\b|order_by\('"
        ),
    ),
    (
        "cross-expressions",
        re.compile(
            r"in (annotate|_annotate|aggregate|get_aggregation|add_annotation|alias)\b"
            r"|an expression on [\w.]+'s own rows|in (update|resolve_expression)\b"
        ),
    ),
    ("cross-joins", re.compile(r".")),
]
SQL_WORDS = re.compile(
    r"\.query\b|sql|SQL|JOIN|SELECT|captured_queries|connection\.queries|alias_map|join_type"
)
SUITE_FRAME_AT = re.compile(r'File "([^"]*/tests/[^"]+\.py)", line (\d+), in \w+')


def blocks(output: str) -> dict[str, str]:
    """Return each failing test's report (header and traceback) from unittest's output."""
    found: dict[str, str] = {}
    for chunk in BLOCK_SEPARATOR.split(output):
        chunk = chunk.strip("\n")
        if match := FAILURE_HEADER.match(chunk):
            name, where = match.groups()
            test = where if where.endswith("." + name) else f"{where}.{name}"
            # The last block's tail is the run's summary.
            text = re.split(r"^-{70}\nRan \d+ tests?", chunk, flags=re.M)[0]
            found[test] = found.get(test, "") + text + "\n"
    return found


def classify(block: str) -> dict | None:
    """Return the category a failure's report shows, or None (a bug)."""
    if refused := REFUSAL.search(block):
        for section, pattern in REFUSAL_SECTIONS:
            if pattern.search(block):
                return {
                    "category": "refusal",
                    "docs": f"limitations.rst#{section}",
                    "detail": (refused.group(1) or refused.group(2))[:160],
                }
    if re.search(r"^AssertionError: \d+ != \d+ : \d+ queries executed, \d+ expected", block, re.M):
        return {"category": "query-count"}
    if re.search(r"^AssertionError: IntegrityError not raised", block, re.M):
        return {"category": "no-constraint"}
    last_assertion = block.rstrip().splitlines()[-1] if block.strip() else ""
    if re.search(r"^AssertionError", block, re.M) and (
        SQL_WORDS.search(_failing_statement(block))
        or re.search(r"'(SELECT|UPDATE|DELETE) ", last_assertion)
    ):
        return {"category": "sql-text"}
    return None


def _failing_statement(block: str) -> str:
    """Return the source of the suite's statement that failed, all of its lines.

    The traceback shows its first line only; an assertion on the SQL text
    often names the query on a later one.
    """
    frames = SUITE_FRAME_AT.findall(block)
    if not frames:
        return ""
    path, line = frames[-1][0], int(frames[-1][1])
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    first = lines[line - 1]
    indent = len(first) - len(first.lstrip())
    statement = [first]
    if first.rstrip().endswith(":"):
        return first  # a with/for header: its body is other statements
    for text in lines[line:]:
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            if not text.strip().startswith((")", "]", "}")):
                break
        statement.append(text)
        if text.rstrip().endswith(":"):
            break
    return "\n".join(statement)


def docs_anchor_exists(docs: str) -> bool:
    """True if ``docs`` ("limitations.rst#label") names a label of that page."""
    page, _, label = docs.partition("#")
    path = DOCS / page
    return path.exists() and bool(label) and f".. _{label}:" in path.read_text()


def check_entry(test: str, entry: dict, block: str) -> str | None:
    """Return why ``entry`` does not describe the failure ``block`` (None if it does)."""
    category = entry.get("category")
    if category not in CATEGORIES:
        return f"unknown category {category!r}"
    if category == "open":
        if not re.fullmatch(r"#\d+", entry.get("issue", "")) or not entry.get("cause"):
            return "an open entry needs an issue (#N) and a cause"
        return None
    actual = classify(block)
    if actual is None:
        return f"listed as {category}, but the failure is none of the categories (a bug)"
    if actual["category"] != category:
        return f"listed as {category}, but the failure is {actual['category']}"
    if category == "refusal" and not docs_anchor_exists(entry.get("docs", "")):
        return f"the refusal names {entry.get('docs')!r}, no such section in docs/"
    return None


def in_modules(test: str, labels: list[str]) -> bool:
    return test.split(".", 1)[0] in labels
