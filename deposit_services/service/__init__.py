"""The service layer: plain functions and small classes that drive the ports."""
