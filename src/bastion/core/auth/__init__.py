"""Who may do what: API tokens and console users, each with one role."""
