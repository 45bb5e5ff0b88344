import unittest

from app import auth


class SignInTests(unittest.TestCase):
    def setUp(self):
        auth.reset()
        auth.register("ada", "analytical-engine")

    def test_registered_user_exists(self):
        self.assertTrue(auth.is_registered("ada"))
        self.assertFalse(auth.is_registered("grace"))

    def test_correct_password_is_accepted(self):
        self.assertTrue(auth.check_password("ada", "analytical-engine"))

    def test_wrong_password_is_refused(self):
        self.assertFalse(auth.check_password("ada", "difference-engine"))

    def test_unknown_user_is_refused(self):
        self.assertFalse(auth.check_password("grace", "analytical-engine"))

    def test_usernames_are_case_insensitive(self):
        self.assertTrue(auth.check_password("Ada", "analytical-engine"))
        with self.assertRaises(ValueError):
            auth.register("ADA", "another-password")

    def test_passwords_are_case_sensitive(self):
        self.assertFalse(auth.check_password("ada", "Analytical-Engine"))
        self.assertFalse(auth.check_password("ada", "ANALYTICAL-ENGINE"))

    def test_short_passwords_are_refused(self):
        with self.assertRaises(ValueError):
            auth.register("grace", "cobol")
        self.assertFalse(auth.is_registered("grace"))


if __name__ == "__main__":
    unittest.main()
