"""crossdb's AppConfig: the one place crossdb's seams into Django are installed."""

from __future__ import annotations

from django.apps import AppConfig


class CrossdbConfig(AppConfig):
    name = "crossdb"
    verbose_name = "crossdb"

    def ready(self):
        from crossdb import checks, seams  # noqa: F401  (importing checks registers them)

        seams.install_all()
