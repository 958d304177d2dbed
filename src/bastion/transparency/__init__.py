"""Transparency: the DSA's and the TCO's reporting duties, from the event logs: statements of reasons to the
Commission's database (``submission``), and the figures regulators and researchers read (``metrics``, ``rollups``,
``reports``; DSA Art. 15, 24, 42; TCO Art. 7-8)."""
