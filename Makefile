# pluginpool — build, test, benchmark.
#
#   make run     build everything and run the seed demo from pool.toml
#   make test    build what the tests need, then go test -race ./...
#   make bench   pluginpool vs Python multiprocessing, side by side
#   make proto   regenerate sdk/proto, sdk/python's worker_pb2.py and host/cluster/clusterpb (needs protoc; CI never does)

GO      ?= go
BIN     := bin
PLUGINS := $(notdir $(wildcard plugins/*))

.PHONY: all build run test bench proto clean vet

all: build

build:
	@mkdir -p $(BIN)/plugins
	$(GO) build -o $(BIN)/pluginpool ./host/cmd/pluginpool
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
		$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; done

run: build
	@echo '$$ pluginpool apply child "Child process"    # Process(target=...).start(); .join()'
	@$(BIN)/pluginpool apply child "Child process"
	@echo '$$ pluginpool map -w 3 double 1 2 3 4 5      # Pool(processes=3).map(process_task, [1,2,3,4,5])'
	@$(BIN)/pluginpool map -w 3 double 1 2 3 4 5
	@echo '$$ pluginpool map -w 4 printer 1 2 3 4       # four processes printing "Number: N", never garbled'
	@$(BIN)/pluginpool map -w 4 printer 1 2 3 4
	@echo '$$ pluginpool run                            # the default pipeline in pool.toml: double -> printer'
	@$(BIN)/pluginpool run

test: build
	$(GO) vet ./...
	@$(GO) run ./internal/python/findpython
	$(GO) test -race -count=1 -timeout 9m ./...

# BENCHFLAGS: e.g. -only W1,W3 -runs 1, or -json; see bench/README.md.
bench: build
	GO=$(GO) $(GO) run ./bench/cmd/bench $(BENCHFLAGS)

# Regenerating the wire code needs protoc 3.21 (whose Python output loads
# on protobuf 4.21 and later runtimes) and the two Go generators, pinned:
#   apt-get install -y protobuf-compiler libprotobuf-dev
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# Go and Python are generated together. The Python SDK registers its gRPC
# services by hand (see sdk/python/pluginpool/_serve.py), so it needs only
# the messages (--python_out), no grpc_python_plugin stubs.
proto:
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I sdk/proto \
		--go_out=sdk/proto --go_opt=paths=source_relative \
		--go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		--python_out=sdk/python/pluginpool \
		sdk/proto/worker.proto
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I host/cluster/clusterpb \
		--go_out=host/cluster/clusterpb --go_opt=paths=source_relative \
		host/cluster/clusterpb/cluster.proto

clean:
	rm -rf $(BIN)
