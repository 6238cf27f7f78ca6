"""The tooling app: routed to ``shop_db``; one crossdb field per ``on_delete`` rule.

The targets are ``auth.Group`` rows in ``default`` (groups have a natural key,
which the fixture tests use).
"""

from django.contrib.auth.models import Group
from django.db import models

from crossdb import CrossDatabaseForeignKey

# The group SET_DEFAULT and SET() fall back to; tests create it.
FALLBACK_GROUP_ID = 9001


def fallback_group_id():
    return FALLBACK_GROUP_ID


class Ticket(models.Model):
    title = models.CharField(max_length=50)
    owner = CrossDatabaseForeignKey(Group, on_delete=models.CASCADE, related_name="owned_tickets")
    assignee = CrossDatabaseForeignKey(
        Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_tickets"
    )
    queue = CrossDatabaseForeignKey(
        Group,
        on_delete=models.SET_DEFAULT,
        default=FALLBACK_GROUP_ID,
        related_name="queued_tickets",
    )
    reviewer = CrossDatabaseForeignKey(
        Group,
        on_delete=models.SET(fallback_group_id),
        null=True,
        blank=True,
        related_name="reviewed_tickets",
    )
    watcher = CrossDatabaseForeignKey(
        Group, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="watched_tickets"
    )
    approver = CrossDatabaseForeignKey(
        Group, on_delete=models.RESTRICT, null=True, blank=True, related_name="approved_tickets"
    )

    class Meta:
        ordering = ["id"]


class TicketNote(models.Model):
    """Protects its ticket: a CASCADE fix of the ticket's owner is blocked by it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="notes")
    text = models.CharField(max_length=50)
