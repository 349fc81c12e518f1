from tests.switchboard_client.conftest import server  # noqa: F401  (fixture: one server per module)
