"""crossrec.features."""
