"""voucherd's HTTP layer: thin Starlette handlers over the shared ``voucherd`` package."""
