"""Addons that ship with waylay, written on the same hook API as users' own."""
