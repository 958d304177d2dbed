"""Transparency: the figures regulators and researchers read, counted from the event logs (DSA Art. 15, 24,
42; TCO Art. 7-8)."""
