"""Banks of known content, and matching uploads against them."""
