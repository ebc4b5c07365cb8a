-- Attempt counters for login and code-entry throttling, in the database so that every node
-- of a PostgreSQL deployment counts against the same limit, and so that one statement can
-- increment and read a counter atomically (concurrent wrong passwords each get their own
-- count). A counter lives for a fixed window from its first attempt; the sweeper deletes it
-- after `expires_at`.
CREATE TABLE throttle_counters (
    key         TEXT NOT NULL PRIMARY KEY,
    count       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX throttle_counters_expires_at_idx ON throttle_counters (expires_at);
