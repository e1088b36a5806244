"""What drives the service layer: the message worker, the scheduled jobs, the
operator's commands (one module per group, cli.py only parses and dispatches), their
progress bar and the status reports."""
