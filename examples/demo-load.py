#!/usr/bin/env python3
"""demo-load.py: the demo app's traffic — users signing in against the demo repository's `app.auth`, each attempt
logged the way a small web service logs it, to the file Medic's monitor tails.

    python3 examples/demo-load.py --repo <data-dir>/demo-repo --log <data-dir>/demo-app.log [--rate 8] [--duration 3600]

Some demo users registered passwords that only work once normalised (a leading space from a password manager, a
German umlaut typed as a combining character, full-width digits from a phone keyboard): `register()` stores the
NFKC-normalised, stripped password but `check_password()` hashes what was typed, so they get "wrong password"
although it is correct — the bug the monitor finds. The module is imported afresh from the repository every second,
so once Medic applies an approved fix the next sign-ins use it and the errors stop.

Lines (format `plain` for the monitor):
    2026-12-05T09:14:31.123Z ERROR auth: login failed user=juergen.mueller reason=wrong_password ip=10.0.4.17
    2026-12-05T09:14:31.250Z INFO auth: login ok user=grace.hopper ip=10.0.4.20

Bounded by --duration; it also stops as soon as the process that started it (medic serve) is gone. Standard library
only; nothing is written into the repository (no bytecode either).
"""
import argparse
import datetime
import importlib
import os
import random
import sys
import tempfile
import time

# (username, the password exactly as the user types it, ip). The first two are plain ASCII and always work.
USERS = [
    ("grace.hopper", "CorrectHorse42", "10.0.4.20"),
    ("ada.lovelace", "Analytical1843", "10.0.4.21"),
    ("juergen.mueller", " Gru\u0308\u00dfe2026", "10.0.4.17"),          # a leading space and a combining umlaut
    ("zoe.dupont", "Motdepasse\uff11\uff12\uff13", "10.0.4.18"),          # full-width digits from a phone keyboard
    ("amelie.roux", "cafe\u0301-au-lait-7 ", "10.0.4.19"),                # a combining accent and a trailing space
    ("linus.berg", "\uff2e\uff4f\uff52\uff44\uff4c\uff59\uff53-42", "10.0.4.22"),  # full-width letters
]


def now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def load_auth(repo):
    """A fresh `app.auth` from the repository (its accounts empty), or the error that stopped the import."""
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        auth = importlib.import_module("app.auth")
    except Exception as e:  # a broken fix: the service logs it and keeps trying
        return None, f"{type(e).__name__}: {e}"
    for user, password, _ in USERS:
        try:
            auth.register(user, password)
        except Exception as e:
            return None, f"register {user} failed: {type(e).__name__}: {e}"
    return auth, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="the demo repository (its app/auth.py is imported)")
    parser.add_argument("--log", required=True, help="the log file to append to")
    parser.add_argument("--rate", type=float, default=8.0, help="sign-ins per second (default 8)")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds to run (default 3600)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: unseeded)")
    args = parser.parse_args()
    if not (0 < args.rate <= 1000) or not (0 < args.duration <= 86400):
        parser.error("--rate must be in (0, 1000] and --duration in (0, 86400]")
    repo = os.path.abspath(args.repo)
    if not os.path.isfile(os.path.join(repo, "app", "auth.py")):
        parser.error(f"{repo} has no app/auth.py")
    # Never read or write bytecode in the repository: a stale .pyc must not hide an applied fix.
    sys.dont_write_bytecode = True
    sys.pycache_prefix = tempfile.mkdtemp(prefix="medic-demo-load-")
    sys.path.insert(0, repo)
    rng = random.Random(args.seed)
    parent = os.getppid()
    end = time.monotonic() + args.duration
    interval = 1.0 / args.rate
    auth, failure, loaded_at = None, None, 0.0
    with open(args.log, "a", buffering=1, encoding="utf-8") as log:
        next_at = time.monotonic()
        while time.monotonic() < end and os.getppid() == parent:
            if time.monotonic() - loaded_at >= 1.0:
                auth, failure = load_auth(repo)
                loaded_at = time.monotonic()
            user, password, ip = rng.choice(USERS)
            if auth is None:
                log.write(f"{now_text()} ERROR auth: service unavailable user={user} ip={ip} error={failure!r}\n")
            elif auth.check_password(user, password):
                log.write(f"{now_text()} INFO auth: login ok user={user} ip={ip}\n")
            else:
                log.write(f"{now_text()} ERROR auth: login failed user={user} reason=wrong_password ip={ip}\n")
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
