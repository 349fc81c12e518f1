"""Signals of conversations, for apps above it (presence's unread counts) to act on."""

from django.dispatch import Signal

# Sent inside the transaction that stores a new message, with ``conversation_id`` and
# ``sender_id``; receivers that push something wait for the commit (``on_commit``).
message_stored = Signal()
