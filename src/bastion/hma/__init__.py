"""HMA's REST API (Meta's Hasher-Matcher-Actioner) served over Bastion's banks, so HMA's clients move unchanged."""
