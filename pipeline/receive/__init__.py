"""`pipeline receive`: the push receiver (Okta Event Hooks, PingOne webhooks, plain POSTs)
writing to the raw Kafka topics; see server.py."""
