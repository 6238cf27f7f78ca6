"""The sandbox's admin, served for the end-to-end tests.

These tests start ``sandbox/manage.py runserver`` (its own SQLite files in a
temporary directory) and drive it in headless Chromium; they do not depend on
the backend profile, so the main suite, which runs once per profile, leaves
them out: ``make e2e`` (``pytest tests/e2e``) runs them.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANAGE = ROOT / "sandbox" / "manage.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _requested(config) -> bool:
    """Return True when the command line names this directory or a file in it."""
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if not _requested(config):
        return True
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """Migrate and seed a fresh sandbox, serve it on 127.0.0.1; yield its base URL."""
    var = tmp_path_factory.mktemp("sandbox")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_URL")}
    env.update(SANDBOX_VAR=str(var), SANDBOX_DEBUG="1", PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, str(MANAGE), "demo", "--seed-only"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    log = (var / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/admin/login/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the sandbox server did not start:\n{(var / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.2)
        yield Sandbox(url, var)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


class Sandbox:
    """A served sandbox: its URL, its SQLite files, what the server wrote."""

    def __init__(self, url: str, var: Path):
        self.url = url
        self.var = var

    def server_log(self, last: int = 60) -> str:
        """Return the last lines the server wrote (tracebacks of failed pages)."""
        return "\n".join((self.var / "server.log").read_text().splitlines()[-last:])

    def query(self, database: str, sql: str) -> list[tuple]:
        """Return the rows of ``sql`` run on the sandbox's ``database`` SQLite file."""
        with closing(sqlite3.connect(self.var / f"{database}.sqlite3")) as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def browser():
    """Launch Debian's Chromium headless through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def admin_page(browser, sandbox):
    """Return a page logged in to the sandbox admin with the demo login."""
    context = browser.new_context(base_url=sandbox.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "crossdb-demo")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()
