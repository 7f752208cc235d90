import pytest

# contract.py holds the tests but is not a test module: have pytest rewrite its asserts all the same.
pytest.register_assert_rewrite("tests.broker.contract")
