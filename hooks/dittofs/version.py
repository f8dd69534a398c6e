"""The one DittoFS release this hook writes for, and how its image starts.

`VERSION` is written only here: the CRD's default image (a test checks it), the tests' `dfs`
build (`scripts/build-dfs.sh` imports this module) and the docs follow it. Moving to another
release means checking config.yaml, env names and the API against that release first
(docs/dittofs-version.md).
"""
VERSION = "v0.29.0"
IMAGE_REPOSITORY = "marmos91c/dittofs"
IMAGE = f"{IMAGE_REPOSITORY}:{VERSION}"
GO_MODULE = "github.com/marmos91/dittofs"

BINARY = "/app/dfs"                 # the image's one binary (renamed from `dittofs` in DittoFS #128)
RUN_AS = 65532                      # the image's uid and gid ("nonroot")


def start_args(config_path: str) -> list[str]:
    """The arguments `dfs` takes to run a server in the foreground from a config file."""
    return ["start", "--foreground", "--config", config_path]
