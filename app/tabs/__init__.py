"""One module per tab: a builder that lays the tab out and returns a frozen dataclass of the
components its events use, and a ``wire_*`` function that binds them to :mod:`app.callbacks`.

:mod:`~app.tabs.panel` is the fairness panel the Fairness and Cohort tabs both show.
"""
