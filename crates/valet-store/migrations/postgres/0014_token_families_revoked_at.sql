-- The sweeper removes unused families revoked more than a day ago; without an index on
-- revoked_at it read every family to find them. Partial: only revoked families are in it (the
-- sweeper's `revoked_at > $1 AND revoked_at <= $2` implies NOT NULL, so both planners use it).
CREATE INDEX token_families_revoked_at_idx ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
