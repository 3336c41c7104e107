"""crossrec.training."""
