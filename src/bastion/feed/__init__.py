"""The feed gate (what a recommender may show a viewer) and crisis mode."""
