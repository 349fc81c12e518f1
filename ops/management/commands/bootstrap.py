"""Prepare a deployment (idempotent): install the periodic tasks into django-celery-beat,
forget dead processes' metrics; in DEBUG, also create demo accounts to try things alone."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conversations.services import conversation_direct_get_or_create
from core.metrics import metrics_forget_dead
from ops.demo import DEMO_PASSWORD, DEMO_USERS
from ops.schedules import schedules_install
from profiles.services import profile_update


class Command(BaseCommand):
    help = (
        "Idempotent start-up chores: install the periodic task schedules; with DEBUG on, "
        "ensure the demo accounts exist."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = schedules_install()
        changed = {k: v for k, v in report.items() if v and k != "kept"}
        summary = ", ".join(f"{k} {', '.join(v)}" for k, v in changed.items()) or "unchanged"
        self.stdout.write(f"  Periodic tasks ({len(report['kept'])} kept): {summary}")
        metrics_forget_dead()
        if not settings.DEBUG:
            return
        User = get_user_model()
        users = []
        for username, name, interests in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                profile_update(user=user, display_name=name, interests=interests)
            users.append(user)
        conversation_direct_get_or_create(user_id=users[0].pk, other_user_id=users[1].pk)
        names = " and ".join(u for u, _, _ in DEMO_USERS)
        self.stdout.write(f"  Demo accounts: {names}, password '{DEMO_PASSWORD}'")
