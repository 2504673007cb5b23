"""Cost caps (CONTRACT §13): a user's monthly budget, a task's ``max_cost_usd``, and the ledger
of model-turn charges that both are checked against."""
