"""Hash exchanges (ThreatExchange, NCMEC, StopNCII, Tech Against Terrorism) pulled into banks, feedback pushed
back (docs/exchanges.md)."""
