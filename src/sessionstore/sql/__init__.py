"""The SQL backend: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2 async."""
