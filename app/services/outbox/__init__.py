"""The transactional outbox that feeds the mirrors (Google Calendar, RAG).

- `jobs`: the SQL of the `outbox_jobs` queue: queue in the writer's transaction, claim with
  leases, settle, report.
- `dispatcher`: claims due jobs, hands them to their mirror, records the outcome.
- `delivery`: how a delivery can fail (worth retrying or not) and `Retry-After`.
The mirrors themselves are `google_calendar_service.CalendarMirror` and
`rag_sync_service.RagMirror`; `sync_service` decides which of them run.
"""
