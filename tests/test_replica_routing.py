"""Replicas in ``AppLabelRouter`` (``DATABASE_REPLICAS``), ``migrate_all`` and the seed routers.

No database is needed: the routers' answers are checked as such, on every profile.
"""

import random
from collections import Counter

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.db import router
from django.test import override_settings

from crossdb import routing
from crossdb.management.commands.migrate_all import ordered_aliases
from crossdb.pinning import PinnedReadsRouter, pin_to_primaries
from crossdb.routers import AppLabelRouter, primary_of, replica_aliases
from tests.blog.models import Comment, Post
from tests.replicas import SEED_CHAINS
from tests.shop.models import Profile

REPLICAS = {"default": ["replica"], "blog_db": ["blog_replica_1", "blog_replica_2"]}


@pytest.fixture
def replicas():
    with override_settings(DATABASE_REPLICAS=REPLICAS):
        yield


def on(alias, instance):
    instance._state.db = alias
    return instance


def test_reads_go_to_a_replica_of_the_models_primary_and_writes_to_the_primary(replicas):
    r = AppLabelRouter()
    assert r.db_for_read(User) == "replica"
    assert r.db_for_write(User) == "default"
    assert r.db_for_read(Post) in {"blog_replica_1", "blog_replica_2"}
    assert r.db_for_write(Post) == r.db_for_write(Comment) == "blog_db"
    # A primary without replicas is read where it is written.
    assert r.db_for_read(Profile) == r.db_for_write(Profile) == "shop_db"


def test_each_read_picks_one_of_the_replicas_uniformly_at_random(replicas):
    random.seed(13)
    picks = Counter(AppLabelRouter().db_for_read(Post) for _ in range(2000))
    assert set(picks) == {"blog_replica_1", "blog_replica_2"}
    assert 850 < picks["blog_replica_1"] < 1150


def test_pinned_reads_go_to_the_primary(replicas):
    r = AppLabelRouter()
    with pin_to_primaries():
        assert r.db_for_read(User) == "default"
        assert r.db_for_read(Post) == "blog_db"
    assert r.db_for_read(User) == "replica"


def test_without_the_setting_nothing_changes():
    with override_settings(DATABASE_REPLICAS=None):
        assert AppLabelRouter().db_for_read(User) == "default"
        assert replica_aliases() == set()
    with override_settings(DATABASE_REPLICAS={"default": []}):
        assert AppLabelRouter().db_for_read(User) == "default"


def test_replicas_are_never_migrated(replicas):
    r = AppLabelRouter()
    for alias in ("replica", "blog_replica_1", "blog_replica_2"):
        for app_label in ("auth", "blog", "shop", "contenttypes"):
            assert r.allow_migrate(alias, app_label) is False
    assert r.allow_migrate("default", "auth") is True
    assert r.allow_migrate("blog_db", "blog") is True


def test_relations_between_primaries_and_replicas_are_allowed(replicas):
    r = AppLabelRouter()
    assert r.allow_relation(on("replica", User()), on("blog_db", Post())) is True
    assert r.allow_relation(on("default", User()), on("blog_replica_2", Post())) is True
    assert r.allow_relation(on("replica", User()), on("blog_replica_1", Post())) is True
    assert r.allow_relation(on("replica", User()), on("elsewhere", Post())) is None
    assert primary_of("blog_replica_2") == "blog_db"
    assert primary_of("default") == "default"


def test_crossdb_routing_of_a_related_read_goes_to_the_replica(replicas):
    post = on("blog_replica_1", Post(pk=1, author_id=1))
    with override_settings(DATABASE_ROUTERS=["crossdb.routers.AppLabelRouter"]):
        assert router.db_for_read(User, instance=post) == "replica"
        assert router.db_for_write(User, instance=post) == "default"
        with pin_to_primaries():
            assert router.db_for_read(User, instance=post) == "default"
            assert routing.db_for_read(User, instance=post) == "default"


def test_migrate_all_skips_the_replicas():
    with override_settings(DATABASE_REPLICAS={"default": ["shop_db"]}):
        others = sorted(set(settings.DATABASES) - {"default", "shop_db"})
        assert ordered_aliases() == ["default", *others]
        with pytest.raises(CommandError, match=r"shop_db \(of default\)"):
            ordered_aliases(["blog_db", "shop_db"])
    with override_settings(DATABASE_REPLICAS=None):
        assert ordered_aliases() == ["default", *sorted(set(settings.DATABASES) - {"default"})]


@pytest.mark.parametrize("chain", sorted(SEED_CHAINS))
def test_the_seed_routers_keep_working_unchanged(chain):
    user = on("replica", User(pk=1))
    post = on("blog_db", Post(pk=1, author_id=1))
    with override_settings(DATABASE_ROUTERS=SEED_CHAINS[chain]):
        reads = {router.db_for_read(User, instance=post) for _ in range(200)}
        assert reads == ({"replica"} if chain == "primary_replica" else {"replica", "default"})
        assert router.db_for_write(User, instance=post) == "default"
        assert router.db_for_read(Post, instance=user) == "blog_db"
        assert router.allow_relation(user, post) is True


@pytest.mark.parametrize("chain", sorted(SEED_CHAINS))
def test_pinned_reads_router_pins_the_seed_routers(chain):
    post = on("blog_db", Post(pk=1, author_id=1))
    routers = [PinnedReadsRouter(), *SEED_CHAINS[chain]]
    with override_settings(DATABASE_ROUTERS=routers):
        with pin_to_primaries():
            assert {router.db_for_read(User, instance=post) for _ in range(100)} == {"default"}
            assert router.db_for_read(Post, instance=post) == "blog_db"
        assert "replica" in {router.db_for_read(User, instance=post) for _ in range(100)}
