"""Memberships made before consent (migration 0003) become accepted: nobody loses a
conversation they were in."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("conversations", "0002_batch_retry_function")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_memberships_made_before_consent_are_accepted(django_user_model):
    ann = django_user_model.objects.create_user(username="mig-ann")
    bob = django_user_model.objects.create_user(username="mig-bob")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old_apps = _migrate(BEFORE)
    try:
        conversation = old_apps.get_model("conversations", "Conversation").objects.create(
            kind="direct", direct_key=f"{ann.pk}:{bob.pk}"
        )
        old_membership = old_apps.get_model("conversations", "Membership")
        for user in (ann, bob):
            old_membership.objects.create(conversation_id=conversation.pk, user_id=user.pk)
        new_apps = _migrate(latest)
        rows = new_apps.get_model("conversations", "Membership").objects.values_list(
            "user_id", "state", "invited_by_id"
        )
        assert sorted(rows) == [(ann.pk, "accepted", None), (bob.pk, "accepted", None)]
    finally:
        _migrate(latest)


def test_existing_messages_read_as_unchanged_after_the_change_numbers_migration(
    django_user_model,
):
    """Migration 0005 on existing rows: every message and conversation starts at change 0
    (a constant default, no rewrite), and the partial index holds none of them."""
    ann = django_user_model.objects.create_user(username="mig-cid")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old_apps = _migrate([("conversations", "0004_members_version")])
    try:
        conversation = old_apps.get_model("conversations", "Conversation").objects.create(
            kind="group", title="old", last_seq=2
        )
        old_message = old_apps.get_model("conversations", "Message")
        for seq in (1, 2):
            old_message.objects.create(
                conversation_id=conversation.pk, seq=seq, sender_id=ann.pk, body="b",
                client_id=f"old-{seq}", edited_at=None,
            )  # fmt: skip
        new_apps = _migrate(latest)
        new_message = new_apps.get_model("conversations", "Message")
        assert list(new_message.objects.values_list("change_seq", flat=True)) == [0, 0]
        assert (
            new_apps.get_model("conversations", "Conversation")
            .objects.get(pk=conversation.pk)
            .last_change_seq
            == 0
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'msg_changes'")
            (definition,) = cursor.fetchone()
        assert "WHERE (change_seq > 0)" in definition
    finally:
        _migrate(latest)
