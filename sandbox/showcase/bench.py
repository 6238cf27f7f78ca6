"""The side-by-side benchmark: crossdb across databases against a plain ForeignKey in one.

The same rows are written twice: ``blog.Post`` in blog_db (its author, a
``CrossDatabaseForeignKey``, in default) and ``twin.TwinPost`` in default (a
plain ``ForeignKey``, answered by JOINs).  Each round runs every operation on
both, alternating which goes first; the table gives the median time of each
side and the median of the per-round ratios.  A benchmark, not a test: a slow
machine fails nothing.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from io import StringIO

from blog.models import Post
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models import Exists, Max, Min, OuterRef
from twin.models import TwinPost

from crossdb.deletion.locks import takes_row_locks
from showcase import bench_aggregates, bench_m2m, bench_rows

User = get_user_model()
USER_PREFIX = "bench-"
CASCADE_PREFIX = "benchdel-"
POST_PREFIX = "bench post "
SIDES = ("crossdb", "plain")
# The model and reverse accessor of each side.
POSTS = {"crossdb": Post, "plain": TwinPost}
REVERSE = {"crossdb": "blog_posts", "plain": "twin_posts"}


@dataclass
class Dataset:
    """Where the benchmark's rows are: id ranges of users and of each side's posts."""

    users: tuple[int, int]
    posts: dict[str, tuple[int, int]]
    user_count: int
    post_count: int

    def posts_of(self, side: str):
        return POSTS[side].objects.filter(pk__range=self.posts[side])

    def users_qs(self):
        return User.objects.filter(pk__range=self.users)


@dataclass
class Operation:
    """One row of the table: how to prepare (untimed) and run (timed) it on a side."""

    name: str
    target: float | None
    run: object
    prepare: object = None
    cleanup: object = None
    warm_up: bool = True
    times: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    sizes: dict[str, set] = field(default_factory=lambda: {side: set() for side in SIDES})
    error: str | None = None

    def ratios(self) -> list[float]:
        return [c / p for c, p in zip(self.times["crossdb"], self.times["plain"], strict=True) if p]


def wipe() -> None:
    """Remove every row a benchmark run (finished or interrupted) wrote."""
    # Raw deletes, one table at a time: the benchmark's rows reference only
    # each other, and a cross-database collector is what is being measured.
    bench_m2m.wipe()
    for model in (Post, TwinPost):
        model.objects.filter(title__startswith=POST_PREFIX)._raw_delete(
            model.objects.db_manager().db
        )
    users = User.objects.filter(username__startswith=USER_PREFIX) | User.objects.filter(
        username__startswith=CASCADE_PREFIX
    )
    users._raw_delete(users.db)


def populate(users: int, posts: int, stdout) -> Dataset:
    """Write ``users`` users and ``posts`` posts on each side; return where they are."""
    User.objects.bulk_create(
        [User(username=f"{USER_PREFIX}{i:05d}") for i in range(users)], batch_size=1000
    )
    bench_users = User.objects.filter(username__startswith=USER_PREFIX)
    user_ids = list(bench_users.order_by("pk").values_list("pk", flat=True))
    ranges = {}
    for side in SIDES:
        model = POSTS[side]
        start = time.perf_counter()
        model.objects.bulk_create(
            [
                model(
                    author_id=user_ids[i % users],
                    title=f"{POST_PREFIX}{i}",
                    published=i % 3 != 0,
                )
                for i in range(posts)
            ],
            batch_size=1000,
        )
        span = model.objects.filter(title__startswith=POST_PREFIX).aggregate(
            low=Min("pk"), high=Max("pk")
        )
        ranges[side] = (span["low"], span["high"])
        elapsed = time.perf_counter() - start
        stdout.write(f"  wrote {posts} {model._meta.label} rows in {elapsed:.1f}s")
    return Dataset((user_ids[0], user_ids[-1]), ranges, users, posts)


def operations(
    data: Dataset,
    forward_rows: int,
    cascade_users: int,
    cascade_posts: int,
    create_rows=200,
    stdout=None,
):
    """Return the operations of the table, each runnable on either side."""

    def fresh_posts(side):
        # Unprimed instances: post.author must be fetched, not read from a cache.
        return list(data.posts_of(side)[:forward_rows])

    def forward(side, posts):
        return sum(1 for post in posts if post.author is not None)

    def prefetch_forward(side, _):
        return len(list(data.posts_of(side).prefetch_related("author")))

    def prefetch_reverse(side, _):
        users = list(data.users_qs().prefetch_related(REVERSE[side]))
        return sum(len(getattr(user, REVERSE[side]).all()) for user in users)

    def select_related(side, _):
        posts = list(data.posts_of(side).select_related("author"))
        return sum(1 for post in posts if post.author is not None)

    def lookup_forward(side, _):
        return len(list(POSTS[side].objects.filter(author__username__startswith="bench-000")))

    def lookup_reverse(side, _):
        lookup = {f"{REVERSE[side]}__title__endswith": "00"}
        return len(list(User.objects.filter(**lookup).distinct()))

    counter = iter(range(10**9))

    # On backends with row locks the crossdb side locks the users it deletes
    # before reading their posts (crossdb.deletion.locks); SQLite locks nothing.
    cascade_locking = ", parents locked" if takes_row_locks("default") else ""

    def cascade_prepare(side):
        tag = f"{CASCADE_PREFIX}{side}-{next(counter)}-"
        User.objects.bulk_create([User(username=f"{tag}{i}") for i in range(cascade_users)])
        ids = list(User.objects.filter(username__startswith=tag).values_list("pk", flat=True))
        model = POSTS[side]
        model.objects.bulk_create(
            [
                model(author_id=user_id, title=f"{POST_PREFIX}cascade {n}")
                for user_id in ids
                for n in range(cascade_posts)
            ],
            batch_size=1000,
        )
        return ids

    def cascade(side, ids):
        User.objects.filter(pk__in=ids).delete()
        # Rows left behind would make the two sides' work differ: say so.
        return POSTS[side].objects.filter(author_id__in=ids).count()

    def cascade_cleanup(side, ids):
        POSTS[side].objects.filter(author_id__in=ids)._raw_delete(POSTS[side].objects.db)
        User.objects.filter(pk__in=ids)._raw_delete(User.objects.db)

    def author_ids(side):
        return list(data.users_qs().values_list("pk", flat=True)[:create_rows])

    def create(side, ids):
        # One INSERT per row in autocommit: crossdb adds the checked, locked target.
        for user_id in ids:
            POSTS[side].objects.create(author_id=user_id, title=f"{POST_PREFIX}created")
        return len(ids)

    def bulk_create(side, ids):
        rows = [POSTS[side](author_id=i, title=f"{POST_PREFIX}created") for i in ids * 10]
        return len(POSTS[side].objects.bulk_create(rows, batch_size=1000))

    def created_cleanup(side, _):
        POSTS[side].objects.filter(title=f"{POST_PREFIX}created")._raw_delete(
            POSTS[side].objects.db
        )

    def audit(side, _):
        if side == "plain":
            # What auditing a plain ForeignKey takes inside one database: one anti-join.
            missing = ~Exists(User.objects.filter(pk=OuterRef("author_id")))
            return TwinPost.objects.filter(missing).count()
        return run_audit()

    return [
        Operation(f"forward access ({forward_rows} posts)", 1.10, forward, prepare=fresh_posts),
        Operation(f"prefetch forward ({data.post_count} posts)", 1.15, prefetch_forward),
        Operation(f"prefetch reverse ({data.user_count} users)", 1.15, prefetch_reverse),
        Operation(f"select_related ({data.post_count} posts)", 1.6, select_related),
        Operation("lookup forward (author__username)", 1.6, lookup_forward),
        Operation("lookup reverse (blog_posts__title)", 1.6, lookup_reverse),
        Operation(
            f"cascade delete ({cascade_users} users x {cascade_posts} posts{cascade_locking})",
            1.3,
            cascade,
            prepare=cascade_prepare,
            cleanup=cascade_cleanup,
            warm_up=False,
        ),
        Operation(
            f"create() ({create_rows} posts, checked)",
            1.3,
            create,
            prepare=author_ids,
            cleanup=created_cleanup,
        ),
        Operation(
            f"bulk_create() ({create_rows * 10} posts, checked)",
            1.3,
            bulk_create,
            prepare=author_ids,
            cleanup=created_cleanup,
        ),
        *bench_aggregates.operations(Operation),
        *bench_rows.operations(data, Operation),
        Operation("audit of Post.author (all rows)", None, audit),
        *bench_m2m.operations(data, stdout, Operation),
    ]


def run_audit() -> int:
    """Run ``crossdb_audit`` on ``blog.Post.author``; return its exit status."""
    try:
        call_command(
            "crossdb_audit",
            "--model",
            "blog.Post",
            "--field",
            "author",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    except CommandError as exc:
        if "Unknown command" in str(exc):
            raise
        return exc.returncode
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def references() -> tuple[int, int]:
    """Return the rows and the distinct ids the audit of ``blog.Post.author`` checks."""
    rows = Post._base_manager.count()
    return rows, Post._base_manager.values("author_id").distinct().count()


def pick_clock(name: str):
    """Return the timer for ``--clock``: wall (perf_counter) or cpu (process_time).

    ``auto`` is cpu when every alias is SQLite: all the work is then done in
    this process, and CPU time is not skewed by other processes on a busy
    machine.  A database server's work shows only in wall time.
    """
    if name == "auto":
        in_process = all(connections[alias].vendor == "sqlite" for alias in connections)
        name = "cpu" if in_process else "wall"
    return name, {"wall": time.perf_counter, "cpu": time.process_time}[name]


def measure(op: Operation, rounds: int, clock=time.perf_counter) -> None:
    """Run ``op`` ``rounds`` times on each side, alternating which side goes first."""
    schedule = [SIDES if n % 2 == 0 else SIDES[::-1] for n in range(rounds)]
    if op.warm_up:
        schedule.insert(0, None)
    for order in schedule:
        for side in order or SIDES:
            state = op.prepare(side) if op.prepare else None
            try:
                start = clock()
                size = op.run(side, state)
                elapsed = clock() - start
            finally:
                if op.cleanup:
                    op.cleanup(side, state)
            if order is not None:
                op.times[side].append(elapsed)
                op.sizes[side].add(size)


def machine() -> str:
    """Describe the machine and the software the figures come from."""
    import django

    engines = ", ".join(
        f"{alias} {connections[alias].vendor} {_server_version(alias)}" for alias in connections
    )
    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"SQLite library {sqlite3.sqlite_version}; {engines}"
    )


def _server_version(alias: str) -> str:
    connection = connections[alias]
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version
    if connection.vendor == "postgresql":
        # 150020 -> 15.20
        return f"{connection.pg_version // 10000}.{connection.pg_version % 10000}"
    if connection.vendor == "mysql":
        return ".".join(map(str, connection.mysql_version))
    return ""


def table(ops: list[Operation]) -> list[str]:
    """Return the result as a reStructuredText simple table."""
    rows = [("operation", "crossdb", "plain FK", "ratio", "target", "within")]
    for op in ops:
        if op.error:
            rows.append((op.name, "failed", "", "", _target(op), op.error))
            continue
        crossdb, plain = (statistics.median(op.times[side]) for side in SIDES)
        ratio = statistics.median(op.ratios())
        within = "" if op.target is None else ("yes" if ratio <= op.target else "NO")
        if op.sizes["crossdb"] != op.sizes["plain"]:
            within += " (answers differ)"
        rows.append((op.name, _ms(crossdb), _ms(plain), f"{ratio:.2f}x", _target(op), within))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, _row(rows[0], widths), rule]
    lines += [_row(row, widths) for row in rows[1:]]
    lines.append(rule)
    return lines


def _row(row, widths) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _target(op: Operation) -> str:
    return "" if op.target is None else f"<= {op.target:.2f}x"


def key_transport(count: int, length: int) -> dict:
    """Carry ``count`` string keys of ``length`` characters into one query on blog_db.

    Returns the seconds, the peak Python memory (tracemalloc) and the
    statements sent per alias: on MySQL/MariaDB a set above half of
    ``max_allowed_packet`` goes through a temporary table.
    """
    import tracemalloc

    from crossdb.lookups import ids_in

    keys = [f"{i:0{length}d}" for i in range(count)]
    alias = Post.objects.db
    statements = []

    def counted(execute, sql, params, many, context):
        # A counter, not a query log: a log would hold the whole SQL text.
        statements.append(many)
        return execute(sql, params, many, context)

    tracemalloc.start()
    start = time.perf_counter()
    with connections[alias].execute_wrapper(counted):
        found = Post.objects.filter(ids_in("title", keys)).count()
    seconds = time.perf_counter() - start
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "alias": alias,
        "vendor": connections[alias].vendor,
        "found": found,
        "seconds": seconds,
        "peak_mb": peak / 2**20,
        "statements": len(statements),
        "keys_mb": sum(len(key) for key in keys) / 2**20,
    }
