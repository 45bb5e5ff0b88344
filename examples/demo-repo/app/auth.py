"""Sign-in: registration and password checks for the demo service."""
import hashlib
import hmac
import os
import unicodedata

_ITERATIONS = 10_000
_MIN_LENGTH = 8

# username (lower-cased) -> (salt, password hash)
_accounts = {}


def _hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, _ITERATIONS)


def _key(username):
    return username.strip().lower()


def register(username, password):
    """Creates an account. Usernames are case-insensitive; passwords are case-sensitive."""
    key = _key(username)
    if not key:
        raise ValueError("the username must not be empty")
    if key in _accounts:
        raise ValueError(f"the username {username!r} is taken")
    # Passwords typed on different keyboards and phones differ in Unicode form and stray spaces.
    cleaned = unicodedata.normalize("NFKC", password).strip()
    if len(cleaned) < _MIN_LENGTH:
        raise ValueError(f"the password needs at least {_MIN_LENGTH} characters")
    salt = os.urandom(16)
    _accounts[key] = (salt, _hash(cleaned, salt))


def check_password(username, password):
    """True when password is the account's password; False for a wrong password or an unknown user."""
    account = _accounts.get(_key(username))
    if account is None:
        return False
    salt, expected = account
    return hmac.compare_digest(_hash(password, salt), expected)


def is_registered(username):
    return _key(username) in _accounts


def reset():
    """Forgets every account (for tests)."""
    _accounts.clear()
