"""Sock-puppet audits of a recommender (issue 12): scripted personas watch a feed for N simulated minutes and the
audit measures how soon and how much harmful and borderline content they are served, with and without the gate.

Everything here is deterministic from a seed, so an auditor can reproduce a stored run's figures exactly.
"""
