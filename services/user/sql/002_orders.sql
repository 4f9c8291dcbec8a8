-- Orders: this table is the truth for an order's state. Every transition is one conditional
-- UPDATE on status. active_user_id is user_id while the order is active and NULL otherwise, so
-- its unique key lets a user hold at most one active order even under concurrent requests.
-- (user_id, idempotency_key) is unique so that one Idempotency-Key can never create two orders.
CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  status ENUM('searching','accepted','picked_up','completed','cancelled','expired') NOT NULL,
  pickup_lat DOUBLE NOT NULL,
  pickup_lng DOUBLE NOT NULL,
  pickup_address VARCHAR(255) NOT NULL,
  dropoff_lat DOUBLE NOT NULL,
  dropoff_lng DOUBLE NOT NULL,
  dropoff_address VARCHAR(255) NOT NULL,
  vehicle_type ENUM('motorcycle','car') NOT NULL,
  distance_m INT UNSIGNED NOT NULL,
  duration_s INT UNSIGNED NOT NULL,
  price BIGINT NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'IDR',
  surge_multiplier DOUBLE NOT NULL DEFAULT 1,
  quote_id VARCHAR(64) NULL,
  driver_id BIGINT UNSIGNED NULL,
  offer_id BIGINT UNSIGNED NULL,
  idempotency_key VARCHAR(64) NULL,
  request_hash CHAR(64) NULL,
  cancel_reason VARCHAR(255) NULL,
  active_user_id BIGINT UNSIGNED AS
    (CASE WHEN status IN ('searching','accepted','picked_up') THEN user_id ELSE NULL END) PERSISTENT,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  accepted_at DATETIME(3) NULL,
  picked_up_at DATETIME(3) NULL,
  completed_at DATETIME(3) NULL,
  cancelled_at DATETIME(3) NULL,
  expired_at DATETIME(3) NULL,
  UNIQUE KEY uq_orders_idempotency (user_id, idempotency_key),
  UNIQUE KEY uq_orders_active (active_user_id),
  KEY ix_orders_user (user_id, id),
  KEY ix_orders_driver (driver_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
