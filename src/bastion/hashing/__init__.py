"""Signal types: how content becomes hashes, and how hashes are compared and indexed."""
