"""crossrec.data."""
