"""Reports: the HTML a reviewer reads. `style` (tables, words), `weekly`, `symbol`, `charts`
(theirs), `revision` (what a revision changed), `index` (the report and revision indexes, the
gate summary), `summary` (the run's summary)."""
