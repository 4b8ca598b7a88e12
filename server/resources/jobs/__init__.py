"""HTTP routes of voucherd.jobs; each module exports ``routes``."""
