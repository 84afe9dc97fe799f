"""Google Calendar machinery: the official client, wrapped for the mirror (`client`).

The door to this area is `app.services.google_calendar_service`.
"""
