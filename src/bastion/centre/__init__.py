"""The EU Centre's side (``bastion centre serve``): receives providers' reports, filters duplicates and unfounded
ones, forwards the rest to the competent law-enforcement authority (or Europol), urgent ones first."""
