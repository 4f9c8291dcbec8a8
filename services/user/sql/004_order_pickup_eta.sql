-- The driver's predicted way to the pickup (city seconds), from the offer that won the order:
-- null until a driver is found (docs/ai.md). Idempotent: safe on a database that has it.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS pickup_eta_s INT UNSIGNED NULL AFTER duration_s;
