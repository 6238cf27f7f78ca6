"""``manage.py demo``: migrate, seed and walk through crossdb across three databases."""

from django.core.management.base import BaseCommand, CommandError

from showcase.seed import DEMO_LOGIN, migrate, seed
from showcase.walkthrough import Walkthrough


class Command(BaseCommand):
    help = (
        "Migrate every database, seed the demo data (idempotent) and run the "
        "walk-through, showing which database answered each query."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="Migrate and seed, skip the walk-through (used by make serve).",
        )

    def handle(self, *args, seed_only=False, **options):
        how = migrate(self.stdout)
        self.stdout.write(f"migrated every database with {how}")
        created = seed()
        made = ", ".join(f"{what}: {n}" for what, n in created.items() if n) or "nothing new"
        self.stdout.write(f"seeded: {made}")
        failed = [] if seed_only else Walkthrough(self.stdout, self.style).run()
        username, password = DEMO_LOGIN
        self.stdout.write("")
        self.stdout.write(
            "Browse it: make serve, then http://127.0.0.1:8000/admin/ "
            f"(login {username} / password {password})"
        )
        if failed:
            raise CommandError(f"{len(failed)} step(s) failed: {'; '.join(failed)}")
