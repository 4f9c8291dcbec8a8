-- What an offer's driver was predicted to take to the pickup, where core saw the driver when it
-- made the offer, and when the driver answered (accept or reject): the order's pickup_eta_s,
-- and antar-train's history of offers (docs/ai.md). Idempotent: safe on a database that has them.
ALTER TABLE offers
  ADD COLUMN IF NOT EXISTS driver_lat DOUBLE NULL,
  ADD COLUMN IF NOT EXISTS driver_lng DOUBLE NULL,
  ADD COLUMN IF NOT EXISTS pickup_eta_s INT UNSIGNED NULL,
  ADD COLUMN IF NOT EXISTS responded_at DATETIME(3) NULL;
