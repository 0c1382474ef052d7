"""What assistants need to write DAGs that fit, beyond what the other faces already offered: a search over the
published DAGs and the marketplace (`search`, from `extract`), a repository's conventions to write to
(`conventions`), DAG code validated as text before it is proposed (`drafts`), and the outcome of DAG runs as one
document each (`run_results`). The MCP face (airflow_dagops/mcp) and the CLI call these; nothing here is a face.
"""
