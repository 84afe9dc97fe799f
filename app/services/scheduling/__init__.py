"""The scheduling engine and what feeds it.

- `schedule`: what the engine takes: a doctor's week, slot length and rules, and what each
  date adds (leaves, appointments, holds, an override, a holiday).
- `engine`: the pure function from those to free slots, built from named checks.
- `refusal`: why a slot is not offered, from the same checks.
- `queries`: the SQL that loads what the engine needs; `rows`: its shape and its one decoder.
- `day_cache`: each doctor-day's facts, JSON and offered slots, remembered under the day's
  version, and whole answers under a stamp.
- `search`: the earliest free slots across doctors.
The door to this area is `app.services.availability_service`.
"""
