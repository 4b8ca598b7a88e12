"""Code shared by voucherd's server and worker: settings, storage, keys, scripts, domain services."""
