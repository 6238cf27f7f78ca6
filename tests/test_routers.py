"""``crossdb.routers.AppLabelRouter`` and ``crossdb.routing``."""

import pytest
from django.contrib.auth.models import User
from django.db import router
from django.test import override_settings

from crossdb import routing
from crossdb.routers import AppLabelRouter
from crossdb.serializers import target_alias
from tests.blog.models import Comment, Post
from tests.shop.models import Profile
from tests.twin.models import TwinPost


def test_app_label_router_routes_by_rule_and_defaults_to_default():
    r = AppLabelRouter()
    assert r.db_for_read(Post) == r.db_for_write(Post) == "blog_db"
    assert r.db_for_read(Profile) == "shop_db"
    assert r.db_for_read(User) == r.db_for_read(TwinPost) == "default"


def test_app_label_router_migrates_each_app_only_on_its_alias():
    r = AppLabelRouter()
    assert r.allow_migrate("blog_db", "blog") is True
    assert r.allow_migrate("default", "blog") is False
    assert r.allow_migrate("shop_db", "auth") is False
    assert r.allow_migrate("default", "auth") is True


def test_app_label_router_allows_relations_between_configured_aliases_only():
    r = AppLabelRouter()
    user, post = User(), Post()
    user._state.db, post._state.db = "default", "blog_db"
    assert r.allow_relation(user, post) is True
    post._state.db = "replica"
    assert r.allow_relation(user, post) is None


def test_app_label_router_reads_the_setting_at_call_time():
    with override_settings(DATABASE_ROUTING_RULES={"blog": "shop_db"}):
        assert AppLabelRouter().db_for_read(Post) == "shop_db"
    with override_settings(DATABASE_ROUTING_RULES=None):
        assert AppLabelRouter().db_for_read(Post) == "default"


def test_crossdb_pairs_are_registered_for_both_ends_only():
    assert routing.is_cross_pair(Post, User) and routing.is_cross_pair(User, Post)
    assert routing.is_cross_pair(Profile, User)
    assert not routing.is_cross_pair(Comment, Post)  # a same-database ForeignKey
    assert not routing.is_cross_pair(TwinPost, User)
    assert not routing.is_cross_pair(Post, object())


@pytest.mark.parametrize(
    ("routers", "expected"),
    [
        (["crossdb.routers.AppLabelRouter"], "blog_db"),
        (["tests.routers.BlogRouter", "tests.routers.ShopRouter"], "blog_db"),
        (["tests.routers.RulesOrNoneRouter"], "blog_db"),
        # No router: Django creates every table on every alias, so the
        # instance's own alias holds the target's table too.
        ([], "shop_db"),
    ],
)
def test_routing_never_falls_back_to_the_other_ends_alias(routers, expected):
    user = User(pk=1)
    user._state.db = "shop_db"
    post = Post(pk=1)
    post._state.db = "replica"
    with override_settings(DATABASE_ROUTERS=routers):
        # Across a crossdb relation: the routers, else the instance's alias
        # if the target's table lives there, else default.
        assert router.db_for_read(Post, instance=user) == expected
        assert router.db_for_write(User, instance=post) == "default"
        assert routing.db_for_read(Post, instance=user) == expected
        # Between models with no crossdb field, Django's own fallback stands.
        comment_db = router.db_for_read(Comment, instance=post)
        assert comment_db == ("replica" if not routers else "blog_db")


@pytest.mark.parametrize(
    ("routers", "alias", "expected"),
    [
        ([], "blog_db", "blog_db"),
        ([], "not-configured", "default"),
        # allow_migrate answers True for blog on blog_db, False for auth.
        (["tests.routers.RulesOrNoneRouter"], "blog_db", "default"),
        # Abstaining on allow_migrate does not put the table there.
        (["tests.routers.RefusingRouter"], "shop_db", "default"),
    ],
)
def test_home_alias_when_routers_abstain(routers, alias, expected):
    with override_settings(DATABASE_ROUTERS=routers):
        assert routing.home_alias(User, alias) == expected
    with override_settings(DATABASE_ROUTERS=["tests.routers.RulesOrNoneRouter"]):
        assert routing.lives_on(Post, "blog_db") is True
        assert routing.lives_on(Post, "default") is False


def test_allow_relation_for_crossdb_pairs():
    user, post, comment = User(), Post(), Comment()
    user._state.db, post._state.db, comment._state.db = "default", "blog_db", "default"
    with override_settings(DATABASE_ROUTERS=["tests.routers.RulesOrNoneRouter"]):
        # Routers that abstain: allowed where each end is where the other reads
        # it (auth_user on default, the blog on blog_db, by allow_migrate).
        assert routing.relation_answer(user, post) is None
        assert router.allow_relation(user, post) is True  # declared cross-database
        assert router.allow_relation(comment, post) is False  # Django's same-alias rule
    with override_settings(DATABASE_ROUTERS=[]):
        # No router: every table is on every alias, so post.author on blog_db
        # would read blog_db's auth_user, a different row: refused, as Django does.
        assert router.allow_relation(user, post) is False
        user._state.db = "blog_db"
        assert router.allow_relation(user, post) is True
        user._state.db = None  # unsaved: placed later, allowed
        assert router.allow_relation(user, post) is True
        user._state.db = "default"
    with override_settings(DATABASE_ROUTERS=["tests.routers.RefusingRouter"]):
        assert router.allow_relation(user, post) is False
        assert routing.relation_answer(user, post) is False


@pytest.mark.parametrize(
    ("routers", "fixture_alias", "expected"),
    [
        (["crossdb.routers.AppLabelRouter"], "blog_db", "default"),
        (["tests.routers.BlogRouter", "tests.routers.ShopRouter"], "blog_db", "default"),
        # No router: ``loaddata --database shop_db`` finds the target there.
        ([], "shop_db", "shop_db"),
    ],
)
def test_natural_keys_are_looked_up_where_the_target_lives(routers, fixture_alias, expected):
    with override_settings(DATABASE_ROUTERS=routers):
        assert target_alias(Post._meta.get_field("author"), fixture_alias) == expected


def test_assigning_an_end_from_where_the_relation_does_not_read_it_is_refused():
    # No router: post.author on blog_db reads blog_db's auth_user, so a user
    # read from default would be swapped for the row with its id on blog_db.
    user = User(username="elsewhere")
    user._state.db = "default"
    post = Post(title="t")
    post._state.db = "blog_db"
    with override_settings(DATABASE_ROUTERS=[]):
        with pytest.raises(ValueError, match="the current database router prevents this"):
            post.author = user
        user._state.db = "blog_db"
        post.author = user  # both on blog_db: Django's one-alias relation
        assert post.author is user
