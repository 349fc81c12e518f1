"""One module per scenario, each exposing ``run(*, quick, results_dir) -> dict``.

``python -m bench`` runs every module found here (bench/README.md).
"""
