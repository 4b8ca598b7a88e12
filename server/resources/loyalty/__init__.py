"""HTTP routes of voucherd.loyalty; each module exports ``routes``."""
