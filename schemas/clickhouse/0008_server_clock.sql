-- When a batch was written and a dead letter received, by the warehouse's clock, not the
-- worker's: the freshness panels, the stale-data rule and the TTLs compare these with the
-- server's now(), so a worker whose clock is off cannot age rows early or hide a stall.
ALTER TABLE ingest_batches MODIFY COLUMN written_at DateTime64(3, 'UTC') DEFAULT now64(3);
ALTER TABLE dead_letters MODIFY COLUMN received_at DateTime64(3, 'UTC') DEFAULT now64(3);
