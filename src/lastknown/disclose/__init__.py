"""Disclosure: the policy gate, the response package writers and the ledger.

Only this package writes files that leave the system, and only allowlisted fields.
"""
