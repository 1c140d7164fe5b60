// Package clusterpb is the wire format between a pluginpool host and its
// cluster workers: cluster.proto and the Go code generated from it by
// `make proto` (committed). Both ends are pluginpool; plugins never see
// it. Package cluster encodes and decodes the hot fields (items, results)
// by hand with protowire, aliasing NATS message buffers, and uses the
// generated types for the rest.
package clusterpb
