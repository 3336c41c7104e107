"""crossrec.models."""
