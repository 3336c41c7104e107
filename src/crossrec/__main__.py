"""``python -m crossrec`` runs the command-line interface (also under torchrun)."""

from crossrec.cli.main import app

app()
