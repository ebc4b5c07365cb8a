-- Refresh-token rotation grace window: the successor of a rotated token, sealed under the
-- master key, so that a client retrying within seconds gets the same successor back.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed BLOB;
