"""crossrec.serving."""
