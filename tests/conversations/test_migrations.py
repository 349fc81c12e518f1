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
