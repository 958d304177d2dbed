"""Fact-checking partners: items sent to them, their signed ratings, and the restrictions the ratings lead to."""
