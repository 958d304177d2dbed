"""Hash exchanges: ThreatExchange and NCMEC hash sharing pulled into banks, feedback pushed back (docs/exchanges.md)."""
