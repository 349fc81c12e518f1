"""Checks shared by every service that stores text users typed."""


def text_storable(value: str) -> bool:
    """Return whether PostgreSQL (and SQLite) can store ``value`` as text.

    NUL characters are refused by PostgreSQL and lone surrogates (valid in JSON as
    ``"\\ud800"``) cannot be encoded as UTF-8: both would otherwise surface as a 500. Text
    that is only relayed (Meet's room lines, WebRTC signalling) is checked too: the channel
    layer encodes it as UTF-8, so a surrogate would be acknowledged and then lost.
    """
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
