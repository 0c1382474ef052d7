"""Credentials of Git repositories, kept in Airflow Connections: creating them, generating and rotating
ed25519 deploy keys, and diagnosing access ("which key is used, does the host accept it"). Nothing secret is
ever written to dagops' own database or logs.

- access.py: test a repository's access and say what to do (`test_access`, `AccessResult`, `KINDS`)
- deploy_keys.py: the public key of a connection, new ed25519 key pairs (`deploy_key`, `deploy_key_info`)
- connections.py: connections credentials work creates and retires (`create_connection`, pending copies)
- rotation.py: rotate keys and tokens, verified before use (`rotate`, `start_rotation`, `confirm_rotation`)
- common.py: the repository as these modules see it, its host, the transports
"""
