"""The demo accounts ``bootstrap`` creates with DEBUG on (and ``make run`` prints): plain
data, importable before Django is set up."""

DEMO_PASSWORD = "switchboard-demo"
# (username, display name, interests): two people who match on Meet and share a chat.
DEMO_USERS = [
    ("alice", "Alice", ["music", "hiking", "python"]),
    ("bob", "Bob", ["music", "chess", "python"]),
]
