"""The demo's walk-through: run what the README promises, show which alias answered.

Each step runs one operation inside ``crossdb.testing.capture_queries()`` and
its JOIN detector, prints the result and the SQL each alias received, then
checks the result against the same answer computed one database at a time.  A step whose
feature is missing or wrong says so; nothing is printed that did not happen.
"""

from __future__ import annotations

import re
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO

from blog.models import Comment, Post, Team
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, get_commands
from django.db import connections, router
from django.db.models import Max, ProtectedError
from shop.models import Order

from crossdb import integrity
from crossdb.lookups import ids_in
from crossdb.testing import capture_queries, detect_cross_database_tables
from showcase.factories import CommentFactory, PostFactory, UserFactory

User = get_user_model()
SQL_WIDTH = 108
SQL_PER_ALIAS = 4


@dataclass
class Outcome:
    """What a step shows, and what went wrong (empty when the answer was right)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    queries: list = field(default_factory=list)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


def misplaced(queries) -> list[str]:
    """Describe each statement the JOIN detector saw sent to the wrong database."""
    return [
        f"{violation.alias} was sent SQL naming "
        + ", ".join(
            f"{table} (which lives in {', '.join(sorted(homes))})"
            for table, homes in sorted(violation.tables.items())
        )
        for violation in queries.detector.violations
    ]


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    # The column list says little about where a query went: keep the rest.
    sql = re.sub(r"^SELECT (DISTINCT )?(?:(?! FROM ).){40,} FROM ", r"SELECT \1... FROM ", sql)
    return sql if len(sql) <= SQL_WIDTH else sql[: SQL_WIDTH - 3] + "..."


class Walkthrough:
    """Print the numbered steps; remember which ones failed."""

    def __init__(self, stdout, style):
        self.stdout = stdout
        self.style = style
        self.failed: list[str] = []
        self.number = 0

    def write(self, line: str = "", style=None) -> None:
        self.stdout.write(style(line) if style else line)

    def header(self) -> None:
        self.write("crossdb demo: one project, three databases", self.style.MIGRATE_HEADING)
        for alias in connections:
            settings_dict = connections[alias].settings_dict
            engine = settings_dict["ENGINE"].rsplit(".", 1)[-1]
            self.write(f"  {alias:<8} {engine:<10} {settings_dict['NAME']}")

    def run(self) -> list[str]:
        """Run every step; return the titles of the steps that failed."""
        self.header()
        ann = User.objects.get(username="ann")
        self.step("Forward access: post.author", FORWARD, lambda o: forward_access(o))
        self.step("The reverse manager: user.blog_posts", REVERSE, lambda o: reverse(o, ann))
        self.step("A lookup across databases", LOOKUP, lambda o: lookup_forward(o))
        self.step("A reverse lookup across databases", REVERSE_LOOKUP, lookup_reverse)
        self.step("select_related across databases", SELECT_RELATED, select_related)
        self.step("Many-to-many across databases: team.members", MANY_TO_MANY, many_to_many)
        self.step("A cascade across databases: user.delete()", CASCADE, cascade)
        self.step("PROTECT across databases: nothing is deleted", PROTECT, protect)
        self.step("crossdb_audit finds dangling references", AUDIT, lambda o: audit(o, ann))
        return self.failed

    def step(self, title: str, code: str, action) -> None:
        self.number += 1
        self.write()
        self.write(f"{self.number}. {title}", self.style.MIGRATE_HEADING)
        for line in code.strip().splitlines():
            self.write(f"   >>> {line}")
        outcome = Outcome()
        try:
            action(outcome)
        except Exception as exc:  # the demo reports any failure and goes on
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome.problems.append(
                f"raised {type(exc).__module__}.{type(exc).__qualname__}: {exc} "
                f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
            )
        for line in outcome.lines:
            self.write(f"   {line}")
        for queries in outcome.queries:
            self.show_queries(queries)
            outcome.problems.extend(misplaced(queries))
        if outcome.problems:
            self.failed.append(title)
            for problem in outcome.problems:
                self.write(f"   FAILED: {problem}", self.style.ERROR)
        else:
            self.write("   ok: same answer as computed one database at a time", self.style.SUCCESS)

    def show_queries(self, queries) -> None:
        counts = ", ".join(f"{alias} {n}" for alias, n in queries.counts().items() if n)
        label = f" ({queries.label})" if queries.label else ""
        self.write(f"   queries per alias{label}: {counts or 'none'}")
        if queries.brief:
            return
        for alias in queries.aliases:
            statements = queries.sql(alias)
            for sql in statements[:SQL_PER_ALIAS]:
                self.write(f"     {alias:<8} {_short(sql)}")
            if len(statements) > SQL_PER_ALIAS:
                self.write(f"     {alias:<8} ... {len(statements) - SQL_PER_ALIAS} more")


@contextmanager
def captured(outcome: Outcome, label: str = "", brief: bool = False):
    """Capture what every alias receives inside the block, for the step to show."""
    queries = capture_queries()
    # brief: show how many queries each alias answered, not their SQL.
    queries.label, queries.brief = label, brief
    # crossdb's JOIN detector notes every statement naming a table of another
    # database: the step then fails whatever answer came back.
    queries.detector = detect_cross_database_tables(raise_errors=False)
    outcome.queries.append(queries)
    with queries, queries.detector:
        yield queries


FORWARD = """
post = Post.objects.order_by("pk").first()
post.author
"""


def forward_access(outcome: Outcome) -> None:
    with captured(outcome):
        post = Post.objects.order_by("pk").first()
        author = post.author
    outcome.lines.append(
        f"{post.title!r} (from {post._state.db}) by {author.username!r} (from {author._state.db})"
    )
    truth = User.objects.get(pk=post.author_id)
    outcome.expect(author == truth, f"post.author is {author!r}, expected {truth!r}")
    outcome.expect(
        author._state.db == router.db_for_read(User),
        f"the author was read from {author._state.db}",
    )


REVERSE = """
ann.blog_posts.all()
ann.blog_posts.create(title="hi")
"""


def reverse(outcome: Outcome, ann) -> None:
    with captured(outcome):
        posts = list(ann.blog_posts.all())
        new = ann.blog_posts.create(title="hi")
    try:
        outcome.lines.append(f"ann's posts: {[post.title for post in posts]}")
        outcome.lines.append(f"created Post {new.pk} on {new._state.db}")
        truth = list(Post.objects.filter(author_id=ann.pk).exclude(pk=new.pk))
        outcome.expect(posts == truth, f"ann.blog_posts.all() gave {posts}, expected {truth}")
        outcome.expect(
            Post.objects.filter(pk=new.pk, author_id=ann.pk).exists(),
            f"the new post is not in {router.db_for_read(Post)}",
        )
    finally:
        # Leave the data as it was: the demo can run again.
        Post.objects.filter(pk=new.pk).delete()


LOOKUP = """
Post.objects.filter(author__username="ann")
"""


def lookup_forward(outcome: Outcome) -> None:
    with captured(outcome):
        posts = list(Post.objects.filter(author__username="ann"))
    outcome.lines.append(f"{[post.title for post in posts]}")
    ids = User.objects.filter(username="ann").values_list("pk", flat=True)
    truth = list(Post.objects.filter(ids_in("author_id", ids)))
    outcome.expect(posts == truth, f"got {posts}, expected {truth}")


REVERSE_LOOKUP = """
User.objects.filter(blog_posts__title__startswith="Two databases").order_by("username")
"""


def lookup_reverse(outcome: Outcome) -> None:
    with captured(outcome):
        users = list(
            User.objects.filter(blog_posts__title__startswith="Two databases").order_by("username")
        )
    outcome.lines.append(f"{[user.username for user in users]}")
    author_ids = Post.objects.filter(title__startswith="Two databases").values_list(
        "author_id", flat=True
    )
    truth = list(User.objects.filter(ids_in("pk", author_ids)).order_by("username"))
    outcome.expect(users == truth, f"got {users}, expected {truth}")


MANY_TO_MANY = """
team, _ = Team.objects.get_or_create(name="Editors")      # in blog_db
team.members.set(User.objects.filter(username__in=["ann", "bob"]))   # users in default
[user.username for user in team.members.order_by("username")]
Team.objects.filter(members__username="ann")
[(t.name, [u.username for u in t.members.all()]) for t in Team.objects.prefetch_related("members")]
"""


def many_to_many(outcome: Outcome) -> None:
    team, _ = Team.objects.get_or_create(name="Editors")
    with captured(outcome):
        team.members.set(User.objects.filter(username__in=["ann", "bob"]))
        members = [user.username for user in team.members.order_by("username")]
        teams = list(Team.objects.filter(members__username="ann"))
        prefetched = [
            (t.name, sorted(u.username for u in t.members.all()))
            for t in Team.objects.prefetch_related("members")
        ]
    outcome.lines.append(f"{members}")
    outcome.lines.append(f"{teams}")
    outcome.lines.append(f"{prefetched}")
    # The truth, one database at a time: the through rows, then the users.
    through = Team.members.through
    user_ids = through.objects.filter(team=team).values_list("user_id", flat=True)
    truth = sorted(User.objects.filter(ids_in("pk", user_ids)).values_list("username", flat=True))
    outcome.expect(members == truth, f"got {members}, expected {truth}")
    ann = User.objects.get(username="ann")
    team_ids = through.objects.filter(user_id=ann.pk).values_list("team_id", flat=True)
    outcome.expect(
        teams == list(Team.objects.filter(pk__in=list(team_ids))), f"got {teams} for ann"
    )
    outcome.expect(("Editors", truth) in prefetched, f"prefetch gave {prefetched}")


SELECT_RELATED = """
posts = Post.objects.select_related("author").order_by("pk")[:5]
[(post.title, post.author.username) for post in posts]
"""


def select_related(outcome: Outcome) -> None:
    with captured(outcome):
        posts = list(Post.objects.select_related("author").order_by("pk")[:5])
        pairs = [(post.title, post.author.username) for post in posts]
    outcome.lines.extend(f"{title!r} by {username!r}" for title, username in pairs)
    truth = [(post.title, User.objects.get(pk=post.author_id).username) for post in posts]
    outcome.expect(pairs == truth, f"got {pairs}, expected {truth}")


CASCADE = """
zoe = User.objects.get(username="zoe")   # 2 posts and 3 comments in blog_db
zoe.delete()
"""


def _remove_leftover(username: str) -> None:
    """Remove a user left by an interrupted run, one database at a time."""
    user = User.objects.filter(username=username).first()
    if user is None:
        return
    Comment.objects.filter(author_id=user.pk).delete()
    Post.objects.filter(author_id=user.pk).delete()
    # Deleting the user through Django would collect across databases: that
    # is the step under demonstration, so the leftover goes by raw delete.
    User.objects.filter(pk=user.pk)._raw_delete(router.db_for_write(User))


def cascade(outcome: Outcome) -> None:
    _remove_leftover("zoe")
    ann = User.objects.get(username="ann")
    zoe = UserFactory(username="zoe")
    for topic in ("Leaving soon", "Last words"):
        CommentFactory(post=PostFactory(author=zoe, title=f"{topic}, by zoe"), author=ann)
    CommentFactory(post=Post.objects.filter(author_id=ann.pk).first(), author=zoe)
    zoe_pk = zoe.pk
    try:
        with captured(outcome):
            deleted = zoe.delete()
        outcome.lines.append(f"zoe.delete() returned {deleted}")
        outcome.expect(
            not User.objects.filter(pk=zoe_pk).exists(), "zoe is still in the users table"
        )
        left = Post.objects.filter(author_id=zoe_pk).count()
        outcome.expect(left == 0, f"{left} of zoe's posts are still in blog_db")
        left = Comment.objects.filter(post__title__endswith=", by zoe").count()
        outcome.expect(left == 0, f"{left} comments on zoe's posts are still in blog_db")
        left = Comment.objects.filter(author_id=zoe_pk).count()
        outcome.expect(left == 0, f"{left} of zoe's comments are still in blog_db")
    finally:
        _remove_leftover("zoe")


PROTECT = """
bob.orders.count()   # Order.customer is PROTECT, in shop_db
bob.delete()
"""


def protect(outcome: Outcome) -> None:
    bob = User.objects.get(username="bob")
    before = (Post.objects.filter(author_id=bob.pk).count(), bob.orders.count())
    outcome.lines.append(f"bob has {before[0]} posts in blog_db and {before[1]} order in shop_db")
    blocked = None
    with captured(outcome):
        try:
            bob.delete()
        except ProtectedError as exc:
            blocked = exc
    if blocked is not None:
        outcome.lines.append(f"ProtectedError: {blocked.args[0]}")
    outcome.expect(blocked is not None, "bob.delete() did not raise ProtectedError")
    after = (
        Post.objects.filter(author_id=bob.pk).count(),
        Order.objects.filter(customer_id=bob.pk).count(),
    )
    outcome.expect(User.objects.filter(pk=bob.pk).exists(), "bob was deleted")
    outcome.expect(after == before, f"posts and orders went from {before} to {after}")
    outcome.lines.append(f"afterwards: bob exists, {after[0]} posts, {after[1]} order")


AUDIT = """
call_command("crossdb_audit")          # clean: exit status 0
Post.objects.filter(pk=p.pk).update(author_id=missing)   # a dangling reference
call_command("crossdb_audit")          # finds it: non-zero exit status
call_command("crossdb_audit", "--fix") # applies on_delete (CASCADE) to it
"""


def _audit(outcome: Outcome, *args) -> int:
    out, err = StringIO(), StringIO()
    command = f"crossdb_audit {' '.join(args)}".rstrip()
    with captured(outcome, label=command, brief=True):
        try:
            call_command("crossdb_audit", *args, stdout=out, stderr=err)
            status = 0
        except CommandError as exc:
            err.write(str(exc))
            status = exc.returncode
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    text = (out.getvalue() + err.getvalue()).strip().splitlines()
    outcome.lines.append(f"{command}: exit status {status}")
    outcome.lines.extend(f"  | {line}" for line in text[:8])
    if len(text) > 8:
        outcome.lines.append(f"  | ... {len(text) - 8} more lines")
    return status


def audit(outcome: Outcome, ann) -> None:
    if "crossdb_audit" not in get_commands():
        outcome.problems.append("this crossdb has no crossdb_audit command")
        return
    outcome.expect(_audit(outcome) == 0, "the audit of the seeded data did not pass")
    missing = (User.objects.aggregate(top=Max("pk"))["top"] or 0) + 1000
    orphan = PostFactory(author=ann, title="Orphaned post")
    try:
        # A dangling reference on purpose: the write check would refuse it.
        with integrity.unchecked():
            Post.objects.filter(pk=orphan.pk).update(author_id=missing)
        outcome.lines.append(f"Post {orphan.pk} now points at user {missing}, who does not exist")
        outcome.expect(_audit(outcome) != 0, "the audit did not report the dangling reference")
        _audit(outcome, "--fix")
        outcome.expect(
            not Post.objects.filter(pk=orphan.pk).exists(),
            "--fix did not delete the orphaned post (on_delete=CASCADE)",
        )
    finally:
        Post.objects.filter(pk=orphan.pk).delete()
