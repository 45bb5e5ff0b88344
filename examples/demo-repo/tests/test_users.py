import unittest

from app import users


class UserLookupTests(unittest.TestCase):
    def test_known_user(self):
        self.assertEqual(users.get_user(1)["name"], "Ada Lovelace")

    def test_unknown_user(self):
        self.assertIsNone(users.get_user(99))


if __name__ == "__main__":
    unittest.main()
