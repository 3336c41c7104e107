"""End-to-end jobs that connect the stages (data -> split -> models -> transfer -> evaluation)."""
