"""The waitlist's machinery: what an entry wishes for (`wishes`), the matcher's reads
(`queries`), offers and how they end (`offers`), an entry as answered and its messages
(`entries`), and the matcher that runs off the requests (`matcher`). The door is
`services/waitlist_service.py`."""
