"""Terrain's test kit: what tests and benchmarks share to run against the real broker and
database. ``database`` (a throwaway database, migrated), ``topics`` (throwaway topics,
reading and producing records, consumers run in the loop), ``sinks`` (the managers'
webhook, SMTP and SMS receivers, an OTLP trace receiver), ``processes`` (the services as
processes), ``factories`` (submissions and messages as the services build them, managers)
and ``privacy`` (scans for phone numbers and email addresses in clear)."""
