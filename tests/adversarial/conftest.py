"""The adversarial suite's figures time each scenario from the start of its test."""

import time

import pytest

from tests.adversarial import figures


@pytest.fixture(autouse=True)
def _time_the_test():
    figures.TEST_STARTED = time.monotonic()
    yield
    figures.TEST_STARTED = None
