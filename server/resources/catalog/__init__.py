"""HTTP routes of voucherd.catalog; each module exports ``routes``."""
