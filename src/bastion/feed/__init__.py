"""Feeds: what a viewer may be recommended (the gate) and audits of what recommenders serve."""
