-- driver-service: offers from core's dispatch, the trips that accepted offers became, and the
-- driver's earnings per completed trip.
CREATE TABLE offers (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  driver_id BIGINT UNSIGNED NOT NULL,
  status ENUM('pending','accepted','rejected','expired','lost','withdrawn') NOT NULL DEFAULT 'pending',
  vehicle_type ENUM('motorcycle','car') NOT NULL,
  pickup_lat DOUBLE NOT NULL,
  pickup_lng DOUBLE NOT NULL,
  pickup_address VARCHAR(255) NULL,
  dropoff_lat DOUBLE NOT NULL,
  dropoff_lng DOUBLE NOT NULL,
  dropoff_address VARCHAR(255) NULL,
  price BIGINT NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'IDR',
  customer_first_name VARCHAR(100) NULL,
  expires_at DATETIME(3) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_offers_order_driver (order_id, driver_id),
  KEY ix_offers_driver_status (driver_id, status, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE trips (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  driver_id BIGINT UNSIGNED NOT NULL,
  offer_id BIGINT UNSIGNED NOT NULL,
  status ENUM('accepted','picked_up','completed','cancelled') NOT NULL DEFAULT 'accepted',
  pickup_lat DOUBLE NOT NULL,
  pickup_lng DOUBLE NOT NULL,
  pickup_address VARCHAR(255) NULL,
  dropoff_lat DOUBLE NOT NULL,
  dropoff_lng DOUBLE NOT NULL,
  dropoff_address VARCHAR(255) NULL,
  price BIGINT NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'IDR',
  customer_first_name VARCHAR(100) NULL,
  accepted_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  picked_up_at DATETIME(3) NULL,
  completed_at DATETIME(3) NULL,
  cancelled_at DATETIME(3) NULL,
  UNIQUE KEY uq_trips_order (order_id),
  KEY ix_trips_driver (driver_id, id),
  KEY ix_trips_driver_status (driver_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE earnings (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  driver_id BIGINT UNSIGNED NOT NULL,
  order_id BIGINT UNSIGNED NOT NULL,
  amount BIGINT NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'IDR',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_earnings_order (order_id),
  KEY ix_earnings_driver (driver_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Orders the user-service told us were cancelled, so that a late offer for one is refused.
CREATE TABLE cancelled_orders (
  order_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
