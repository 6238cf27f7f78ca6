"""Many-to-many across databases: the tags, routed to ``shop_db``."""
