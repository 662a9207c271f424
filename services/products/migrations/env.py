"""Alembic environment of the products service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.products.models import ProductsBase

run_env(ProductsBase.metadata)
