"""Blocks moved from ``matching`` to ``relations``: the migration carries every row over."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("matching", "0001_initial"), ("relations", None)]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def test_blocks_made_before_the_move_are_kept_with_their_ids(django_user_model):
    ann = django_user_model.objects.create_user(username="mig-ann")
    bob = django_user_model.objects.create_user(username="mig-bob")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old_apps = _migrate(BEFORE)
    try:
        old_block = old_apps.get_model("matching", "Block")
        made = old_block.objects.create(blocker_id=ann.pk, blocked_id=bob.pk)
        new_apps = _migrate(latest)
        new_block = new_apps.get_model("relations", "Block")
        moved = new_block.objects.get()
        assert (moved.pk, moved.blocker_id, moved.blocked_id) == (made.pk, ann.pk, bob.pk)
        # New blocks after the copy do not collide with the copied ids.
        fresh = new_block.objects.create(blocker_id=bob.pk, blocked_id=ann.pk)
        assert fresh.pk > made.pk
    finally:
        _migrate(latest)
