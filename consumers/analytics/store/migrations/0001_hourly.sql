-- Hourly aggregates per (platform, profile), counted by each event's occurred_at.
-- hour is the Unix time in seconds of the start of the hour, UTC.
CREATE TABLE analytics_hourly (
    hour          BIGINT NOT NULL,
    platform      TEXT   NOT NULL,
    profile       TEXT   NOT NULL,
    published     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    token_expired BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    PRIMARY KEY (hour, platform, profile)
);

-- Publish delays (published_at - scheduled_at) of the post.published events of the hour:
-- n delays fell in bucket, a DDSketch bucket of 1% relative accuracy (package sketch).
-- Counts add up across hours, so any range's percentiles are those of the summed counts.
CREATE TABLE analytics_delay_buckets (
    hour     BIGINT  NOT NULL,
    platform TEXT    NOT NULL,
    profile  TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    n        BIGINT  NOT NULL,
    PRIMARY KEY (hour, platform, profile, bucket)
);

-- The next offset to count of each partition: written in the transaction of the aggregates
-- that include the records before it.
CREATE TABLE analytics_offsets (
    topic           TEXT    NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset     BIGINT  NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);
