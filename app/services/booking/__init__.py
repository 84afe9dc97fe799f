"""Booking machinery: deciding a slot and writing it (`decide`), the statements that write an
appointment (`sql`) or a hold (`holds`), the batches they are written in (`batch`) and the audit
trail (`audit`). The door to this area is `app.services.booking_service`."""
