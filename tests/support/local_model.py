"""The real local model the slow tests use (tests/integration/conftest.py serves it): the smallest one."""

from __future__ import annotations

from sica.bundled_models import resolve_model

TEST_MODEL_NAME = "0.5b"
TEST_MODEL_ALIAS = resolve_model(TEST_MODEL_NAME).full_name
