-- Staged rotation of the consumer key: while a new key is staged, the previous one still
-- identifies the app, until an admin retires it.
ALTER TABLE apps ADD COLUMN previous_consumer_key TEXT;
CREATE UNIQUE INDEX apps_previous_consumer_key_key ON apps (previous_consumer_key);
