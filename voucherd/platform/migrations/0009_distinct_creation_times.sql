-- Qualifications page by creation time (`starting_after` = created_at of the last item).
-- now() is the transaction's start, so every tier of one campaign would share it and a page
-- boundary between them would drop or repeat items; clock_timestamp() keeps rows apart.
ALTER TABLE promotion_tiers ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE promotion_stacks ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE campaigns ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE vouchers ALTER COLUMN created_at SET DEFAULT clock_timestamp();
