"""Webhooks: events sent out, signed the Standard Webhooks way, through the outbox.

- `events`: the event types, and the one way a message is queued (in the caller's
  transaction, one delivery row and one outbox job per subscribed active endpoint).
- `signing`: `whsec_` secrets and the `webhook-signature` header.
- `secret_box`: secrets sealed at rest, under a key the database does not hold.
- `address`: the SSRF guard, at creation and before every attempt.
- `mirror`: `WebhookMirror`, the dispatcher's deliverer for target `webhook`.
The door is `webhook_service` (endpoints, the delivery log, retry, ping).
"""
