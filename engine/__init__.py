"""voucherd's rule core, compiled with Cython. Pure: no I/O, no logging."""
