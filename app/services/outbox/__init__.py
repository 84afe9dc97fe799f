"""The transactional outbox that feeds the mirrors (Google Calendar, RAG).

- `jobs`: the SQL of the `outbox_jobs` queue: queue in the writer's transaction, claim with
  leases, settle, report.
- `lanes`: the claim of laned jobs (webhooks: one lane per endpoint), one in flight per lane.
- `dispatcher`: claims due jobs (a budget per target), hands them to their mirror, records
  the outcome.
- `delivery`: how a delivery can fail (worth retrying or not) and `Retry-After`.
The mirrors themselves are `google_calendar_service.CalendarMirror`,
`rag_sync_service.RagMirror` and `webhooks.mirror.WebhookMirror`; `sync_service` decides which
of them run.
"""
