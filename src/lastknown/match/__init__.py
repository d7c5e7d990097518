"""Candidate search, scoring and decision rules. Engine-agnostic SQL lives here."""
