"""HTTP routes of voucherd.definitions; each module exports ``routes``."""
