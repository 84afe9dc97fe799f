"""Reminders machinery: the one rule of what an appointment's reminders are and when they are
due (`plan`, planned in the transaction of every change), their coming due (`sweep`, a
dispatcher's chore) and a policy change reaching the appointments already booked (`replan`,
another chore). The door to this area is `app.services.reminder_service`; confirming lives in
`app.services.confirmation_service`."""
