"""message_send under concurrency: gap-free seqs and idempotent retries."""

import threading

import pytest
from django.db import connection

from conversations.models import Message
from conversations.services import conversation_group_create, message_send
from tests.conftest import accept_all

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(n, target):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_concurrent_senders_get_distinct_gap_free_seqs(make_user):
    users = [make_user() for _ in range(8)]
    conv = accept_all(
        conversation_group_create(
            user_id=users[0].pk, title="Busy", member_ids=[u.pk for u in users]
        )
    )

    def send(i):
        for j in range(5):
            message_send(
                sender_id=users[i].pk, conversation_id=conv.pk, body="x", client_id=f"{i}-{j}"
            )

    _, errors = _in_threads(8, send)
    assert errors == []
    seqs = sorted(Message.objects.filter(conversation=conv).values_list("seq", flat=True))
    assert seqs == list(range(1, 41))


def test_concurrent_retries_of_one_client_id_store_one_row(make_user):
    ann, bob = make_user(), make_user()
    conv = accept_all(conversation_group_create(user_id=ann.pk, title="T", member_ids=[bob.pk]))

    def send(i):
        message, created = message_send(
            sender_id=ann.pk, conversation_id=conv.pk, body="once", client_id="retry"
        )
        return message.pk, created

    results, errors = _in_threads(6, send)
    assert errors == []
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Message.objects.filter(conversation=conv).count() == 1
    # The failed attempts rolled their seq increment back: the next message is seq 2.
    message, _ = message_send(sender_id=bob.pk, conversation_id=conv.pk, body="n", client_id="n")
    assert message.seq == 2
