// Package chartcheck tests the Helm chart in ../ipsync: its rendered objects decode strictly into the Kubernetes
// and Prometheus Operator API types, and it runs ipsync the way the project requires (one replica, Recreate,
// probes, no privileges). It is a module of its own so that the Kubernetes API packages stay out of ipsync's
// module (go.mod); .ci/run runs its tests.
package chartcheck
