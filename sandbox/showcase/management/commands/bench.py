"""``manage.py bench``: crossdb against a plain ForeignKey, same rows, side by side."""

import statistics
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from showcase import bench, bench_keys
from showcase.seed import migrate


class Command(BaseCommand):
    help = (
        "Time each operation on crossdb's cross-database relation and on the same "
        "relation as a plain ForeignKey inside default; print the median ratios. "
        "The databases are the sandbox's (DATABASE_URL, DATABASE_URL_BLOG, "
        "DATABASE_URL_SHOP); the benchmark removes its rows when it ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("--posts", type=int, default=20000, help="Posts on each side.")
        parser.add_argument("--users", type=int, default=900, help="Authors of the posts.")
        parser.add_argument("--rounds", type=int, default=5, help="Timed runs of each side.")
        parser.add_argument(
            "--forward-rows", type=int, default=2000, help="Posts whose .author is read."
        )
        parser.add_argument(
            "--clock",
            choices=["auto", "wall", "cpu"],
            default="auto",
            help="wall: elapsed time; cpu: this process's CPU time; auto (default): cpu "
            "when every database is SQLite, else wall.",
        )
        parser.add_argument(
            "--keys",
            type=int,
            default=0,
            help="Also carry this many string keys into one query on blog_db, and as "
            "many usernames through filter, prefetch both ways and a cascade across "
            "shop_db and default; print the time, peak memory and statements (0: skip).",
        )
        parser.add_argument("--key-length", type=int, default=150)
        parser.add_argument(
            "--aggregate-users", type=int, default=0, help="Also time annotate(Count) at N users."
        )
        parser.add_argument("--cascade-users", type=int, default=20)
        parser.add_argument("--cascade-posts", type=int, default=200, help="Posts per user.")

    def handle(self, *args, **options):
        # Query logging (DEBUG) would add its own cost to every query.
        settings.DEBUG = False
        self.stdout.write(f"machine: {bench.machine()}")
        clock_name, clock = bench.pick_clock(options["clock"])
        self.stdout.write(f"migrated every database with {migrate(self.stdout)}")
        if options["keys"]:
            self._keys(options["keys"], options["key_length"])
            if not options["rounds"]:
                return  # --rounds 0: the key transport alone
        bench.wipe()
        try:
            self.stdout.write(f"populating: {options['users']} users, {options['posts']} posts")
            data = bench.populate(options["users"], options["posts"], self.stdout)
            ops = bench.operations(
                data,
                options["forward_rows"],
                options["cascade_users"],
                options["cascade_posts"],
                stdout=self.stdout,
            )
            rows, ids = bench.references()
            for op in ops:
                start = time.perf_counter()
                try:
                    bench.measure(op, options["rounds"], clock)
                except Exception as exc:  # a missing feature is a row of the table
                    op.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                self.stdout.write(f"  measured {op.name} in {time.perf_counter() - start:.1f}s")
        finally:
            bench.wipe()
        self.stdout.write("")
        self.stdout.write(
            f"{options['posts']} posts, {options['users']} users, "
            f"median of {options['rounds']} rounds, {clock_name} time; "
            "crossdb: blog.Post in blog_db -> auth.User in default; "
            "plain FK: twin.TwinPost -> auth.User, both in default"
        )
        for line in bench.table(ops):
            self.stdout.write(line)
        if options["aggregate_users"]:
            from showcase import bench_aggregates

            bench_aggregates.at_scale(
                options["aggregate_users"],
                options["aggregate_users"] * 2,
                self.stdout,
                bench.populate,
                bench.wipe,
            )
        audit = next(op for op in ops if op.name.startswith("audit of "))
        if not audit.error:
            seconds = statistics.median(audit.times["crossdb"])
            self.stdout.write(
                f"audit throughput: {rows} rows ({ids} distinct ids) of blog.Post.author "
                f"in {seconds * 1000:.1f} ms = {rows / seconds:,.0f} rows/s (median)"
            )

    def _keys(self, count, length):
        result = bench.key_transport(count, length)
        self.stdout.write(
            f"key transport: {count} keys of {length} characters ({result['keys_mb']:.1f} MB) "
            f"into one filter on {result['alias']} ({result['vendor']}): "
            f"{result['statements']} statement(s), {result['seconds']:.2f} s, "
            f"peak Python memory {result['peak_mb']:.1f} MB, {result['found']} found"
        )
        self.stdout.write(
            f"string keys across ({bench_keys.vendors()}), shop.Subscription.subscriber "
            f"-> auth.User.username, {count} keys of {min(length, 150)} characters:"
        )
        for name, measured in bench_keys.run_paths(count, min(length, 150)):
            statements = ", ".join(f"{a} {n}" for a, n in sorted(measured["statements"].items()))
            self.stdout.write(
                f"  {name}: {measured['seconds']:.2f} s, peak Python memory "
                f"{measured['peak_mb']:.1f} MB, statements {statements}; "
                f"result {measured['result']}"
            )
