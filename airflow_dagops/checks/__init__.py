"""Pull-request checks: validate a pull/merge request head without publishing it, and report a commit
status back to the Git host (GitHub, GitLab, Gitea). The use cases are in `checks.service`; the
per-provider commit status calls in `checks.status`."""
