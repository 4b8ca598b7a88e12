"""HTTP routes of voucherd.checkout; each module exports ``routes``."""
