// Package manifests checks the deployment examples (examples/kubernetes, examples/systemd) against
// the schemas and rules they claim.
package manifests
