"""Analysis: the shared helpers every experiment's figures use, and the paper's own data.

- :mod:`analysis.frames`: read an experiment's tidy CSV with pandas (mean and
  spread over seeds), draw with matplotlib's Agg backend, save PNGs with a
  caption line beside the CSV;
- :mod:`analysis.paper`: the paper's numbers (``analysis/reference/``), drawn
  dashed beside ours where they compare;
- :mod:`analysis.diagram`: the space-time diagram of one stored snapshot
  (``beaver show ID --diagram``, ``beaver plot diagram``).

Each experiment's own figure is in its module (``experiments/<name>.py``,
``draw``), next to the runs whose CSV it reads.
"""
