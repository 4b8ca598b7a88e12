-- Tiers created together (with their program) shared now(), the transaction's start, so
-- listing them by creation time fell back to their random ids. clock_timestamp() keeps
-- them in the order they were written, as 0009 did for promotion tiers.
ALTER TABLE loyalty_tiers ALTER COLUMN created_at SET DEFAULT clock_timestamp();
