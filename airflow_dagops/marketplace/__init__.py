"""The DAG marketplace: catalogs of shared DAG packages, search, install, update, ratings, badges, publishing.

Use cases (what the faces call; every function returns JSON-able dicts):
    catalogs.py    register, list, remove and refresh catalogs; each catalog's bare mirror
    listing.py     search and a package's page; which catalog provides a package name
    installs.py    install a package into a namespace, list installs, uninstall
    updates.py     move an install to another released version, structural diff first
    ratings.py     ratings and reviews
    checks.py      the scheduled check (dagops_marketplace_check): validate each package, store its badge
    publishing.py  validate a package folder and push it to a branch of a catalog
    users.py       the author/actor name every use case checks
Building blocks: manifest.py (the dagops-package.yaml schema), catalog.py (reading a catalog from git
objects), search.py (ranking).
"""
