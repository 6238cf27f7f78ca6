"""Many-to-many across databases: the sources, routed to ``blog_db``."""
