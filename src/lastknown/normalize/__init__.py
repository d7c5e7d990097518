"""Cleaning rules for names and addresses: every rule lives here, once."""
