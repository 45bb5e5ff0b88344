"""The demo users database of Sources/MedicHost/DemoUsers.swift, rebuilt in Python row for row (same splitmix64 seed,
same draws in the same order, libm's pow on both sides), so the Ask demo's scripted SQL can be checked without a
medic binary. `checksum` is the FNV-1a value both this file and Tests/MedicHostTests/DemoUsersTests.swift pin, so
the two generators cannot drift apart unnoticed."""
import math
import sqlite3

ROWS = 50_000
SEED = 0x4D45_4449_4331_3400
REFERENCE = 1_796_083_200  # 2026-12-01 00:00:00 UTC
FIRST_SIGNUP = 1_672_531_200  # 2023-01-01 00:00:00 UTC
MASK = (1 << 64) - 1

COLUMNS = ["id", "wallet_address", "email", "gender", "age", "country", "region", "city", "wallet_balance_usd",
           "last_active", "is_active", "activity_score", "kyc_verified", "kyc_level", "created_at", "updated_at"]

PLACES = [
    ("Japan", "Tokyo", "Tokyo", 7, 1.2), ("Japan", "Osaka", "Osaka", 3, 1.0), ("Japan", "Kanagawa", "Yokohama", 2, 1.0),
    ("United States", "California", "San Francisco", 6, 1.5), ("United States", "California", "Los Angeles", 6, 1.2),
    ("United States", "New York", "New York", 8, 1.4), ("United States", "Texas", "Austin", 4, 1.1),
    ("United Kingdom", "England", "London", 8, 1.2), ("United Kingdom", "Scotland", "Edinburgh", 2, 0.9),
    ("Germany", "Berlin", "Berlin", 5, 1.0), ("Germany", "Bavaria", "Munich", 3, 1.1),
    ("France", "Île-de-France", "Paris", 5, 1.0), ("Brazil", "São Paulo", "São Paulo", 6, 0.7),
    ("India", "Maharashtra", "Mumbai", 6, 0.6), ("India", "Karnataka", "Bengaluru", 5, 0.7),
    ("Singapore", "Singapore", "Singapore", 4, 1.6), ("Nigeria", "Lagos", "Lagos", 4, 0.5),
    ("Canada", "Ontario", "Toronto", 5, 1.0), ("Australia", "New South Wales", "Sydney", 5, 1.1),
    ("South Korea", "Seoul", "Seoul", 2, 1.2),
]
FIRST_NAMES = ["aiko", "akira", "alex", "amara", "ana", "ben", "carlos", "chen", "chloe", "david", "emma", "fatima", "hana",
               "hiro", "ines", "james", "jin", "kenji", "lea", "liam", "lucas", "maria", "mei", "noah", "olu", "priya", "raj",
               "sakura", "sam", "sofia", "tom", "yuki", "zara"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "wallet.example"]


class SplitMix64:
    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) * 2.0 ** -53

    def int(self, low, high):
        return low + self.next() % (high - low + 1)


def timestamp(epoch):
    days, seconds = divmod(epoch, 86_400)
    z = days + 719_468
    era = (z if z >= 0 else z - 146_096) // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04d}-{month:02d}-{day:02d} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def rows():
    """Every row as a tuple in COLUMNS order, in id order."""
    rng = SplitMix64(SEED)
    total = sum(p[3] for p in PLACES)
    out = []
    for id in range(1, ROWS + 1):
        address = "0x" + "".join("0123456789abcdef"[rng.next() & 15] for _ in range(40))
        name = FIRST_NAMES[rng.int(0, len(FIRST_NAMES) - 1)]
        email = f"{name}.{id}@{DOMAINS[rng.int(0, len(DOMAINS) - 1)]}"
        g = rng.unit()
        gender = "female" if g < 0.48 else "male" if g < 0.96 else "other"
        age = 18 + int(rng.unit() * rng.unit() * 62)
        pick = rng.int(0, total - 1)
        place = PLACES[0]
        for candidate in PLACES:
            if pick < candidate[3]:
                place = candidate
                break
            pick -= candidate[3]
        # Swift's `rounded()` is half away from zero; the values are positive.
        balance = 0.0 if rng.unit() < 0.10 else math.floor(10_000 * math.pow(rng.unit(), 2 / place[4]) * 100 + 0.5) / 100
        idle = int(math.pow(rng.unit(), 1.5) * 60 * 86_400)
        last_active = REFERENCE - idle
        is_active = 1 if idle < 30 * 86_400 else 0
        recency = 1 - idle / (60 * 86_400)
        score = min(100, int(recency * 70 + rng.unit() * 30))
        verified = rng.unit() < 0.60
        l = rng.unit()
        level = 0 if not verified else 1 if l < 0.5 else 2 if l < 0.85 else 3
        created = FIRST_SIGNUP + int(rng.unit() * (last_active - FIRST_SIGNUP))
        updated = max(created, last_active - int(rng.unit() * 10 * 86_400))
        out.append((id, address, email, gender, age, place[0], place[1], place[2], balance, timestamp(last_active),
                    is_active, score, 1 if verified else 0, level, timestamp(created), timestamp(updated)))
    return out


CREATE_TABLE = """CREATE TABLE users (
    id INTEGER PRIMARY KEY, wallet_address TEXT NOT NULL UNIQUE, email TEXT NOT NULL UNIQUE, gender TEXT NOT NULL,
    age INTEGER NOT NULL, country TEXT NOT NULL, region TEXT NOT NULL, city TEXT NOT NULL, wallet_balance_usd REAL NOT NULL,
    last_active TEXT NOT NULL, is_active INTEGER NOT NULL, activity_score INTEGER NOT NULL, kyc_verified INTEGER NOT NULL,
    kyc_level INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"""


def create(path, data=None):
    db = sqlite3.connect(path)
    with db:
        db.execute(CREATE_TABLE)
        db.executemany("INSERT INTO users VALUES (" + ", ".join("?" * len(COLUMNS)) + ")", data or rows())
    return db


# Every column in order, the balance as printf('%.2f') so that both languages see the same text.
CHECKSUM_SQL = ("SELECT id, wallet_address, email, gender, age, country, region, city, printf('%.2f', wallet_balance_usd), "
                "last_active, is_active, activity_score, kyc_verified, kyc_level, created_at, updated_at FROM users ORDER BY id")


def checksum(db):
    """FNV-1a 64 over every cell's text, each followed by 0x1F (as DemoUsersTests.checksum)."""
    h = 0xCBF29CE484222325
    for row in db.execute(CHECKSUM_SQL):
        for cell in row:
            for byte in str(cell).encode() + b"\x1f":
                h = ((h ^ byte) * 0x100000001B3) & MASK
    return h
