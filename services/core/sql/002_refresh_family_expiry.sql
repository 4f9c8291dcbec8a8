-- A refresh-token family has an absolute lifetime (ANTAR_REFRESH_FAMILY_MAX_S from its first
-- token): rotation keeps the family's end, so a stolen token cannot be kept alive for ever by
-- rotating it. NULL for families created before this column (they keep the idle expiry only).
ALTER TABLE refresh_tokens ADD COLUMN IF NOT EXISTS family_expires_at DATETIME(3) NULL;
