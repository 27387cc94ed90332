-- Consumer offsets of the billing sink, written in the same transaction as the rows they cover.
-- On partition assignment the sink seeks to next_offset, so a crash between the database commit and
-- a Kafka offset commit can neither lose nor double a row (Kafka commits serve lag monitoring only).
CREATE TABLE sink_offset (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint  NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
