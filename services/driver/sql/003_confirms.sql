-- Cross-service changes whose answer never came. A timeout is not an answer: when user-service
-- did not say yes or no to an accept (assign) or a pickup, the change is written here and the
-- reconciler asks again, with the same Idempotency-Key, until it gets a definite answer.
CREATE TABLE pending_confirms (
  order_id BIGINT UNSIGNED NOT NULL,
  kind ENUM('assign','pickup') NOT NULL,
  driver_id BIGINT UNSIGNED NOT NULL,
  offer_id BIGINT UNSIGNED NOT NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (order_id, kind),
  KEY ix_pending_confirms_next (next_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The sweep compares active trips that have not moved for a while with their orders; checked_at
-- keeps it from asking about the same trip more than once per sweep period.
ALTER TABLE trips ADD COLUMN checked_at DATETIME(3) NULL,
  ADD KEY ix_trips_status_checked (status, checked_at);
