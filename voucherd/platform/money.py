"""Money is integer minor units (1000 = 10.00) everywhere; this is the largest amount a request may carry."""

MAX_MONEY = 10**15  # any amount, line or order total: far above real carts, far below int64 overflow
