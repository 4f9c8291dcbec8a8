-- core-service: the authorization server's tables. Client secrets are never stored in clear
-- (BLAKE2b-256 of the secret); refresh tokens are stored only as hashes.
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id VARCHAR(64) NOT NULL PRIMARY KEY,
  client_type ENUM('public','confidential') NOT NULL,
  role VARCHAR(16) NOT NULL,
  scope VARCHAR(255) NOT NULL,
  secret_hash CHAR(64) NULL,
  redirect_uris VARCHAR(512) NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS refresh_tokens (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  token_hash CHAR(64) NOT NULL,
  family_id CHAR(32) NOT NULL,
  parent_id BIGINT UNSIGNED NULL,
  client_id VARCHAR(64) NOT NULL,
  sub VARCHAR(64) NOT NULL,
  role VARCHAR(16) NOT NULL,
  scope VARCHAR(255) NOT NULL,
  access_jti VARCHAR(64) NULL,
  access_exp BIGINT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  revoked_at DATETIME(3) NULL,
  UNIQUE KEY uq_refresh_hash (token_hash),
  KEY ix_refresh_family (family_id),
  KEY ix_refresh_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Authorization codes live in Redis (one-time GETDEL, 60 s TTL); this table is kept for the
-- contract's list of core tables and for an audit trail if ever needed.
CREATE TABLE IF NOT EXISTS auth_codes (
  code_hash CHAR(64) NOT NULL PRIMARY KEY,
  client_id VARCHAR(64) NOT NULL,
  sub VARCHAR(64) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
