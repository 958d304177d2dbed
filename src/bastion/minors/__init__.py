"""Safety by design for minors: age bands, who may reach a child, account defaults, family pairing."""
