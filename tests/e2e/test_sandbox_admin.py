"""Browse the sandbox admin in Chromium: posts with their authors, cross-database deletes."""

from __future__ import annotations

import re

import pytest


def _ok(page, response, sandbox, what: str) -> None:
    """Fail with the server's log when a page did not render."""
    if response is None or response.status != 200:
        status = response.status if response else "no response"
        pytest.fail(f"{what}: HTTP {status}; the server said:\n{sandbox.server_log()}")


def _row(page, text: str):
    return page.locator("#result_list tbody tr", has_text=text)


def test_post_changelist_shows_authors_from_default(admin_page, sandbox):
    response = admin_page.goto("/admin/blog/post/")
    _ok(admin_page, response, sandbox, "the post changelist")
    row = _row(admin_page, "Two databases, by cyd")
    assert row.count() == 1
    assert row.locator("td.field-author").inner_text() == "cyd"
    ((posts,),) = sandbox.query("blog", "SELECT COUNT(*) FROM blog_post")
    assert f"{posts} posts" in admin_page.locator("#changelist-form .paginator").inner_text()


def test_post_change_form_shows_its_author(admin_page, sandbox):
    ((post_id, author_id),) = sandbox.query(
        "blog", "SELECT id, author_id FROM blog_post WHERE title = 'Django routers, by dan'"
    )
    response = admin_page.goto(f"/admin/blog/post/{post_id}/change/")
    _ok(admin_page, response, sandbox, "the post change form")
    # The author select's choices are the users, read from default.
    assert admin_page.input_value("#id_author") == str(author_id)
    assert admin_page.locator("#id_author option:checked").inner_text() == "dan"
    options = admin_page.locator("#id_author option").all_inner_texts()
    assert {"admin", "ann", "bob", "cyd", "dan", "eve"} <= set(options)


def test_delete_user_cascades_into_blog_db(admin_page, sandbox):
    admin_page.goto("/admin/auth/user/?q=eve")
    admin_page.locator("#result_list tbody th a", has_text="eve").click()
    admin_page.locator("a.deletelink").click()
    _ok(admin_page, admin_page.reload(), sandbox, "the delete confirmation page")
    summary = admin_page.locator("#content").inner_text()
    # The confirmation page lists the rows in blog_db that go with the user.
    for title in (
        "Django routers, by eve",
        "Two databases, by eve",
        "Cross-database joins, by eve",
    ):
        assert title in summary
    assert re.search(r"Posts: 3", summary)
    admin_page.click("input[type=submit]")
    admin_page.wait_for_url(re.compile(r"/admin/auth/user/(\?.*)?$"))
    assert "was deleted successfully" in admin_page.locator(".messagelist").inner_text()

    response = admin_page.goto("/admin/blog/post/?q=eve")
    _ok(admin_page, response, sandbox, "the post changelist after the delete")
    assert _row(admin_page, "by eve").count() == 0
    assert "0 posts" in admin_page.locator("#changelist-form").inner_text()


def test_delete_user_with_protected_orders_is_refused(admin_page, sandbox):
    admin_page.goto("/admin/auth/user/?q=bob")
    admin_page.locator("#result_list tbody th a", has_text="bob").click()
    admin_page.locator("a.deletelink").click()
    _ok(admin_page, admin_page.reload(), sandbox, "the delete confirmation page")
    content = admin_page.locator("#content").inner_text()
    assert "would require deleting the following protected related objects" in content
    assert re.search(r"Order: 2 × \d+ for \d+", content)
    assert admin_page.locator("input[type=submit]").count() == 0


def test_changing_the_author_saves_to_blog_db(admin_page, sandbox):
    ((post_id,),) = sandbox.query(
        "blog", "SELECT id FROM blog_post WHERE title = 'Cross-database joins, by cyd'"
    )
    ((ann_id,),) = sandbox.query("default", "SELECT id FROM auth_user WHERE username = 'ann'")
    response = admin_page.goto(f"/admin/blog/post/{post_id}/change/")
    _ok(admin_page, response, sandbox, "the post change form")
    admin_page.select_option("#id_author", label="ann")
    admin_page.click("input[name=_save]")
    admin_page.wait_for_url(re.compile(r"/admin/blog/post/(\?.*)?$"))
    assert "was changed successfully" in admin_page.locator(".messagelist").inner_text()
    assert sandbox.query("blog", f"SELECT author_id FROM blog_post WHERE id = {post_id}") == [
        (ann_id,)
    ]
