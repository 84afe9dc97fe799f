"""The scheduling engine and what feeds it.

- `engine`: the pure function from a doctor's schedule, leaves and bookings to free slots.
- `queries`: the SQL that loads what the engine needs.
- `day_cache`: each doctor-day's leaves and bookings, remembered under the day's version.
The door to this area is `app.services.availability_service`.
"""
