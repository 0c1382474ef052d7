"""The registry of repositories: registering, changing and removing them (`registry`), the description of
their options every face derives from (`options`), what faces show about them (`info`), and the
declarative `dagops.yaml` that applies a whole desired state (`declarative`)."""
