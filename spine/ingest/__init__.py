"""Ingest: from a source to the ledger. `sources/` fetch, `fetch` stores captures in raw,
`reconcile` and `gates` check a capture, `decide` records the verdict (and regate, override,
pin), `ledger` holds the events and folds them into what clean holds, `known_at` answers what
the lake held at a ledger time."""
