// Package check reads the deployment examples (the repository's Dockerfile
// and .dockerignore, examples/compose, examples/kubernetes) with the parsers
// the tools themselves use: compose-go for the compose file, BuildKit's for
// Dockerfiles, patternmatcher for .dockerignore files, a YAML decoder for the
// Kubernetes manifests. Its tests check the examples without a Docker engine
// or a cluster; cmd/topology hands what it read to the integration tests,
// which run the topology as processes against a real Vault.
//
// It reads files and never runs what they describe.
package check
