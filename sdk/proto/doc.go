// Package workerpb is the wire contract between a pluginpool host and its
// plugin processes: worker.proto and the Go code generated from it by
// `make proto` (committed, so builds never need protoc). Plugins in Go use
// it through package sdk; plugins in other languages generate their own
// code from worker.proto.
package workerpb
