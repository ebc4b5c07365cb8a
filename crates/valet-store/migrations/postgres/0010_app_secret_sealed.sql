-- Consumer secrets also kept sealed (AES-256-GCM under the master key) for client_secret_jwt,
-- which needs the secret itself to check an HMAC. The hash stays the way secrets are compared.
ALTER TABLE app_secrets ADD COLUMN secret_sealed BYTEA;
