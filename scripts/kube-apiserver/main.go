// Command kube-apiserver is Kubernetes' API server, built from the module proxy at the version
// go.mod pins, so the test suite can check the CRD and the hook's children against the real thing.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
