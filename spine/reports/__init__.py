"""Reports: the HTML a reviewer reads. `style` (tables, charts, words), `weekly`, `symbol`,
`revision` (what a revision changed), `index` (the report and revision indexes), `summary`
(the run's summary)."""
