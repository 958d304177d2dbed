"""Transparency: the DSA's reporting duties, from the event log (statements of reasons to the Commission's database)."""
