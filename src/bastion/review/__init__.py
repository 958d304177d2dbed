"""Human review: cases in queues, claimed by one moderator at a time, each decided exactly once."""
