"""The `dagops` command line: one typer app (`main`), one module per command group. A thin face: every
command calls a use case of the packages below and prints its answer (tables, or JSON with `--json`);
`common` maps dagops errors to exit codes."""
