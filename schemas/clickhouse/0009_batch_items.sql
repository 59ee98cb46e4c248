-- A Kafka message may hold a vendor batch (an Event Hubs body, an Okta Event Hook): each of
-- its records that cannot be read is its own dead letter, told apart by its item index
-- (1-based; 0 when the message is one record), so the item joins the dead letters' key.
-- The engine takes a new sorting-key column only when added in the same statement, without
-- a default expression (UInt32's own default is 0); run twice, both clauses are no-ops.
ALTER TABLE dead_letters
    ADD COLUMN IF NOT EXISTS item UInt32 COMMENT 'the record''s index in its message; 0: the whole message' AFTER offset,
    MODIFY ORDER BY (topic, partition, offset, item);

-- Per batch, the events its messages held as well as the messages.
ALTER TABLE ingest_batches
    ADD COLUMN IF NOT EXISTS events UInt32 COMMENT 'records of the messages (a vendor batch holds many)' AFTER messages;
