"""Repository discovery: scan a GitHub organization, a GitLab group or a Gitea organization for repositories that
match a rule (a topic, a name pattern, a file that must exist), propose them, and register them
(docs/many-repositories.md).

- service.py: sources (the `discovery:` block of dagops.yaml), scans, what matched, registering and ignoring
- rules.py: the rule, and the repository/namespace name derived from a match
- hosts.py: what each host's API is asked (an organization's repositories, a file's existence)
"""
