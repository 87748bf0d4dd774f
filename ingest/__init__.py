"""Receive -> validate -> store, alert: the Sanitel pipeline."""
