// Package deploy holds the tests of the ways the bookshelf is deployed:
// the compose stack at the root of the repository (compose.yaml, the
// images of Dockerfile and images/, run for real on a Docker engine) and
// the Kubernetes manifests in k8s/ (decoded strictly into the Kubernetes
// API types and held to the services' flags). It has no code of its own.
package deploy
