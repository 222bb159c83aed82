# cuivre: `make help` lists the targets.
SHELL    := bash
GO       ?= go
BIN      := bin/cuivre
FUZZTIME ?= 60s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The example workloads whose built modules are committed: the jobs of
# examples/jobs, and those tests need a real Go program for (exectest.Module).
EXAMPLES := hello sieve wordfreq escape fsprobe

.DEFAULT_GOAL := help
.PHONY: help build examples examples-check run test leakcheck lint fuzz abuse conformance bench validate simbench crash queue chaos proto check netns-test

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## build bin/cuivre
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cuivre

examples: ## rebuild the example WebAssembly workloads (GOOS=wasip1; the built modules are committed)
	@for w in $(EXAMPLES); do \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildvcs=false -o examples/wasm/$$w.wasm ./examples/wasm/$$w || exit 1; \
	  echo "examples/wasm/$$w.wasm"; \
	done

examples-check: ## check that the committed example modules are what make examples builds (needs the Go version that built them)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && for w in $(EXAMPLES); do \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildvcs=false -o "$$tmp/$$w.wasm" ./examples/wasm/$$w || exit 1; \
	  cmp -s "$$tmp/$$w.wasm" examples/wasm/$$w.wasm || { echo "examples/wasm/$$w.wasm is not what its source builds to with $$($(GO) env GOVERSION): run make examples"; exit 1; }; \
	done; echo "examples/wasm: $(EXAMPLES) up to date"

run: build ## run the main job: a federation of 8 providers on loopback placing the example jobs
	$(BIN) demo

test: ## run the tests, the rooms test, the vectors, every fuzz seed corpus, and the node's packages under -race; as root, the netns test too; screenshots of the operator's page in test-artifacts/
	mkdir -p test-artifacts
	CUIVRE_NETNS=1 $(GO) test -count=1 -timeout 15m -artifacts -outputdir=$(CURDIR)/test-artifacts ./...
	$(GO) test -count=1 -timeout 15m -race ./node/...

leakcheck: ## make test while capturing on every interface but loopback (root, tcpdump): fails on any packet the tests send beyond loopback
	.ci/leakcheck $(MAKE) test

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz: ## run every fuzz target for FUZZTIME (default 60s) each; a summary at the end, fails if any target fails
	@ran=0; failed=""; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== fuzz $$pkg $$t ($(FUZZTIME))"; ran=$$((ran+1)); \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || failed="$$failed $$pkg.$$t"; \
	  done; \
	done; \
	echo "== fuzz summary: $$ran targets run for $(FUZZTIME) each, $$(wc -w <<<"$$failed") failed"; \
	for f in $$failed; do echo "   FAIL $$f"; done; \
	test -z "$$failed"

abuse: ## T2 forgery (10^6 mutations), T3 flood (1,000 peer IDs) and T7 over-commit (1,000 jobs) at full size: their report in abuse.txt (about 15 minutes)
	rm -f abuse.txt
	CUIVRE_ABUSE=full CUIVRE_ABUSE_REPORT=$(CURDIR)/abuse.txt $(GO) test -p 1 -count=1 -run '^Test(Forgery|Flood|Overcommit)$$' ./node/abuse/ ./cmd/cuivre/ -v -timeout 60m
	cat abuse.txt

conformance: ## the conformance kit's suites against a devnet's provider and requester, each check's report printed (also in make test)
	$(GO) test -count=1 -run '^TestConformance' -v ./cmd/cuivre/

bench: build ## cuivre bench (about 2 minutes; the table, and every figure in bench.json), then the Go benchmarks
	$(BIN) bench --out bench.json
	$(GO) test -run '^$$' -bench . -benchmem ./...

validate: build ## devnets of 20, 50 and 100 providers, cold and warm, against the simulator's devnet scenarios (about 6 minutes; every measure in validate.json)
	$(BIN) bench validate --out validate.json
	$(BIN) bench validate --measured validate.json --calibrate 20 | tail -8
	@echo "(the last table: every simulation given the 20-provider devnet's costs)"

simbench: build ## the simulator's goal: 10^5 providers and 10^6 jobs (about 4 minutes)
	$(BIN) sim run simulations/scenarios/large.yaml --runs 1 --parallel 1 --out results/large

crash: ## kill -9 a provider daemon under load 200 times; check its store and ledger after each (about a minute)
	CUIVRE_CRASH_KILLS=200 $(GO) test -count=1 -run '^TestCrashPoints$$' -v ./cmd/cuivre

queue: ## 300 jobs through `cuivre job run`, 100 at a time, on 5 provider daemons of 1.6 vCPU: every one must succeed (a minute or two)
	CUIVRE_QUEUE=5,300,100 $(GO) test -count=1 -run '^TestQueueCLI$$' -v ./cmd/cuivre

netns-test: ## a small internet in network namespaces (root, ip, iptables): NATed providers, a relay, TCP-only and QUIC-only hosts, jobs from a customer; report in netns.txt (under a minute)
	rm -f netns.txt
	CUIVRE_NETNS=1 CUIVRE_NETNS_REPORT=$(CURDIR)/netns.txt $(GO) test -count=1 -run '^TestNetns$$' -v ./cmd/cuivre/
	@test -f netns.txt || { echo "no report: TestNetns was skipped (its reason is above)"; exit 1; }
	cat netns.txt

chaos: build ## 10 providers and a requester as processes, 10 minutes of jobs under 200+ faults (kills, partitions as root): chaos.json (about 14 minutes)
	$(BIN) chaos --out chaos.json

proto: ## regenerate the protobuf code (needs protoc and protoc-gen-go)
	cd protocol/pb && protoc --go_out=. --go_opt=paths=source_relative cuivre.proto
	$(GO) generate ./node/store/storepb

check: lint ## fmt, vet, tidy, generated code up to date; fails on a dirty tree
	$(GO) mod tidy -diff
	@if command -v protoc >/dev/null && command -v protoc-gen-go >/dev/null; then \
	  $(MAKE) --no-print-directory proto; \
	else echo "protoc or protoc-gen-go not installed: generated code not checked (see README)"; fi
	@git diff --exit-code --stat || { echo "the tree is dirty: commit, or regenerate and commit"; exit 1; }
	@test -z "$$(git status --porcelain)" || { git status --short; echo "untracked or uncommitted files"; exit 1; }
