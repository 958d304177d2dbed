"""An append-only, hash-chained record of every change to banks, tokens, users and settings."""
