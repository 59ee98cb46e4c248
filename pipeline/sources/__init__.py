"""Source parsers, one module per identity provider (plus helpdesk tickets).

The registry of all of them is `pipeline.sources.registry`. Each module exports:
- `SOURCE`: its `pipeline.model.Source`;
- `recognizes(top)`: whether a raw event, given its top-level keys with undecoded values,
  has this source's shape (used by `--source auto`);
- `parse(raw)`: one raw event (bytes or str, exactly as the vendor emits it) -> exactly one
  normalized event, or `RejectedEvent` with the reason.
"""
