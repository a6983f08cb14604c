"""Derive: from the ledger's verdicts to the layers researchers read. `clean` makes clean from
the raw capture the ledger names, `registry` lists the calculations, `calcs` holds one function
each, `calc` is the step that reads a calculation's inputs and writes its output."""
