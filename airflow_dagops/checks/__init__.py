"""Pull-request checks: run the release gate on a pull/merge request head without publishing it, and report a
commit status back to the Git host (GitHub, GitLab, Gitea). The use cases are in `checks.service`; the
per-provider REST calls (commit statuses, pull requests) in `git/host_api.py`."""
