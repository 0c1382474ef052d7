"""The dagops state DB: SQLAlchemy models and an Alembic-managed schema. It never holds a secret."""
