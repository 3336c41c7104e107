"""crossrec.cli."""
