"""crossrec.evaluation."""
