//go:build tools

// Package tools keeps the requirement on SeaweedFS's `weed` command in go.mod and go.sum: a blank
// import behind a build tag, never compiled (the command is built by its import path).
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
