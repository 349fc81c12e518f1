from django.core.exceptions import ValidationError


class ProfileInvalid(ValidationError):
    """A profile update was refused; ``message_dict`` maps each field to its problem."""
