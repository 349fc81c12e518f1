"""What conversations tell the apps above them (presence) without importing them.

``membership_accepted`` is sent after the commit of an accepted request or invitation
(``services.membership_accept``): the two sides may now be contacts, and presence starts
flowing between them (``presence.signals``).
"""

from django.dispatch import Signal

# kwargs: conversation_id (int), user_id (int, the member who accepted)
membership_accepted = Signal()
