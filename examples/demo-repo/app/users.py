"""User lookups backed by a slow directory service."""
import time

_DIRECTORY = {
    1: {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"},
    2: {"id": 2, "name": "Grace Hopper", "email": "grace@example.com"},
}

calls = 0


def _fetch_from_directory(user_id):
    """Simulates a slow network call."""
    global calls
    calls += 1
    time.sleep(0.01)
    return _DIRECTORY.get(user_id)


def get_user(user_id):
    """Returns the user record for user_id, or None."""
    return _fetch_from_directory(user_id)
