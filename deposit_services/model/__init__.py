"""PASS entities, statuses, the DepositSubmission value objects and broker messages."""
