"""Booking machinery: the statements that write an appointment (`sql`) and its audit trail
(`audit`). The door to this area is `app.services.booking_service`."""
