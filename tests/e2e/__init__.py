"""End-to-end tests against the local cluster (hack/cluster.sh); fixtures in conftest.py."""
