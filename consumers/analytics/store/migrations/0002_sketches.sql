-- Each row's publish delays become one encoded sketch (package sketch: DDSketch, 1% relative
-- accuracy, the library's binary encoding), read, merged and written once per batch, instead
-- of a row per bucket. Two rollups are kept in the same transactions as the hourly rows: per
-- (hour, platform), so a month's summary reads 720 rows per platform, and per (day, platform,
-- profile), so the profiles with the most failures read a row per profile and day.
-- Sketches are BYTEA, which SQLite stores as given (a BLOB).
ALTER TABLE analytics_hourly ADD COLUMN delays BYTEA;

CREATE TABLE analytics_platform_hourly (
    hour          BIGINT NOT NULL,
    platform      TEXT   NOT NULL,
    published     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    token_expired BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    delays        BYTEA,
    PRIMARY KEY (hour, platform)
);

-- day is the Unix time in seconds of the start of the UTC day.
CREATE TABLE analytics_profile_daily (
    day           BIGINT NOT NULL,
    platform      TEXT   NOT NULL,
    profile       TEXT   NOT NULL,
    published     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    token_expired BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    PRIMARY KEY (day, platform, profile)
);

INSERT INTO analytics_platform_hourly (hour, platform, published, failed, token_expired, retries)
SELECT hour, platform, SUM(published), SUM(failed), SUM(token_expired), SUM(retries)
FROM analytics_hourly GROUP BY hour, platform;

INSERT INTO analytics_profile_daily (day, platform, profile, published, failed, token_expired, retries)
SELECT hour - ((hour % 86400) + 86400) % 86400, platform, profile, SUM(published), SUM(failed), SUM(token_expired), SUM(retries)
FROM analytics_hourly GROUP BY hour - ((hour % 86400) + 86400) % 86400, platform, profile;

-- The sketches are built from analytics_delay_buckets by the step's Go part
-- (store/sketches_migration.go), which then drops that table.
