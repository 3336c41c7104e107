"""crossrec.transfer."""
