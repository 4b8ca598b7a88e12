"""HTTP routes of voucherd.platform; each module exports ``routes``."""
