"""crossrec."""
