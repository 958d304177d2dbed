"""The transactional outbox: messages to the outside are written with the decision, delivered after commit."""
