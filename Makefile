# Two commands for a newcomer: `make serve` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: serve test bench clean dfs kube-apiserver kubectl helm seaweedfs debian-packages lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The stamp files re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

serve: $(VENV)/.installed
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py 'hooks.web.app:create_app()'

# The real DittoFS server the tests start, built at the pinned version (scripts/build-dfs.sh).
dfs: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/build-dfs.sh

# The real API server the tests start, built at the pinned Kubernetes version
# (scripts/build-kube-apiserver.sh, the module in scripts/kube-apiserver).
kube-apiserver:
	scripts/build-kube-apiserver.sh

# The kubectl the tests run against that server: the same k8s.io/kubernetes version, from the same
# module (scripts/build-kubectl.sh). After kube-apiserver, whose compiled packages it reuses.
kubectl: kube-apiserver
	scripts/build-kubectl.sh

# The helm that lints, renders, installs and upgrades charts/dittofs-hooks in the tests, at the
# version scripts/helm/go.mod pins (scripts/build-helm.sh).
helm:
	scripts/build-helm.sh

# The S3 server behind DittoFS's remote block store in the tests, SeaweedFS's `weed`, built at the
# version scripts/seaweedfs/go.mod pins (scripts/build-seaweedfs.sh).
seaweedfs:
	scripts/build-seaweedfs.sh

# PostgreSQL, etcd, the NFS and SMB clients and the tools for a pod's network namespace
# (scripts/install-debian-packages.sh).
debian-packages:
	scripts/install-debian-packages.sh

test: $(VENV)/.installed-test dfs kube-apiserver kubectl helm seaweedfs debian-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# requirements.lock: the image's runtime dependencies, pyproject.toml's ranges resolved to exact
# versions with the hash of every file PyPI has for them. `make lock` refreshes it (newest
# versions inside the ranges); the Dockerfile installs from it alone.
LOCK_FLAGS := --quiet --upgrade --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: | $(BIN)/python
	$(BIN)/pip install --quiet 'pip-tools>=7.4,<8'
	$(BIN)/pip-compile $(LOCK_FLAGS) --output-file requirements.lock pyproject.toml

bench: $(VENV)/.installed-test
	bash bench/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .cache
