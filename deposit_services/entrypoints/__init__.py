"""What drives the service layer: the message worker, the scheduled jobs, the
operator's progress bar and the status reports."""
