"""Proposals: files offered to a repository from outside (a user, an assistant) are checked by the release
gate first, then committed on a new branch with git plumbing (no checkout) and opened as a pull request on
the Git host."""
