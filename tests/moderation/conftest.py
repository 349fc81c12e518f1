import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from matching.models import Match, Report


@pytest.fixture
def moderator(make_user):
    """A staff user with the permission to act (``moderation.add_auditentry``)."""
    user = make_user()
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        Permission.objects.get(codename="add_auditentry", content_type__app_label="moderation")
    )
    return user


def report_on(reported, reporter, *, reason="harassment", ended=True) -> Report:
    """A match between the two (ended unless ``ended`` is false) and ``reporter``'s report."""
    match = Match.objects.create(
        user_a=reporter, user_b=reported, ended_at=timezone.now() if ended else None
    )
    return Report.objects.create(match=match, reporter=reporter, reported=reported, reason=reason)
