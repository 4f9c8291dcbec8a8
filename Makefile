# The README's commands. The real work is in scripts/ (bash) and CMake.
#   make run     set up, build, start everything, run the demo, keep running until Ctrl-C
#   make test    set up, ASan+UBSan build, unit + integration tests on the real stack
#   make up      start everything in the background (returns once every /health is 200)
#   make down    stop everything
#   make build   optimised build (RelWithDebInfo) into build/
#   make bench   wrk benchmarks and the city's knee against a running `make up` stack
#   make bench-instances  the city's knee and CPU per ride with 1 and with 2 instances per
#                service, each on a stack of its own (bench/instances.sh, ~14 min)
#                → bench/results.md
#   make sim     a small city (200 drivers, 60 s) against a running `make up` stack: summary and
#                audit (SIM_ARGS="--drivers 50 --duration 30" to change it)
#   make soak    10 minutes of the city at half its knee against a running `make up` stack:
#                RSS, descriptors and Redis keys sampled, 0 5xx required (SOAK_ARGS to change)
#   make faults  the city at half its knee under kill -9 of every service, Redis and MariaDB and
#                a SIGTERM, on a stack of its own (.run-faults); per-fault table, audit
#                (FAULTS_ARGS="--drivers 500 --gap-s 30" to change it; --help lists options);
#                then the engines run of `make scale` (Galera node killed, Redis failed over,
#                2 instances per service; FAULTS_ENGINES=0 skips it)
#   make scale   the city on 2 instances per service with each instance killed in turn, then
#                on Galera + Redis Sentinel with the node in use killed and Redis failed over
#                (scripts/scale.sh; docs/scale.md). `ANTAR_INSTANCES=2 ANTAR_DB=galera
#                ANTAR_REDIS=sentinel make up` starts that stack by itself
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (120) each, sanitizers on; crashes and
#                the grown corpora in $(BUILD)/fuzz (FUZZ_TARGETS="fuzz_jwt fuzz_csrf" for some)
#   make format  clang-format the C sources
#   make api-docs  docs/api/: the API reference pages (Redocly, offline) and .http request
#                collections from api/*.yaml, and docs/errors.md from the error table
#   make ai-eval today's rules against core's models in the city (docs/ai.md): trains on its own
#                simulated days, then 5 held-out seeds × 3 arms; long (~1.5 h); not part of make test
SHELL := /bin/bash
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= $(or $(ANTAR_BUILD_DIR),build)

.PHONY: all run test up down status setup build bench bench-instances sim soak faults scale fuzz format clean api-docs ai-eval

all: build

setup:
	@scripts/setup.sh

build:
	@mkdir -p $(BUILD)/api
	@cmake --preset release -B $(BUILD) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run:
	@scripts/run.sh

test:
	@scripts/test.sh

up: setup build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/stack.sh up

down:
	@scripts/stack.sh down

status:
	@scripts/stack.sh status

bench:
	@bench/run.sh
	@bench/city.sh

bench-instances: build
	@bench/instances.sh

sim: build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/sim.sh $(SIM_ARGS)

ai-eval: build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} tools/train/ai-eval.sh

soak: build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/soak.sh $(SOAK_ARGS)

faults: setup build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/faults.sh --up $(FAULTS_ARGS)
	@if [ "$${FAULTS_ENGINES:-1}" != 0 ]; then \
	    ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/scale.sh engines; fi

scale: setup build
	@ANTAR_BIN_DIR=$${ANTAR_BIN_DIR:-$(abspath $(BUILD))/bin} scripts/scale.sh $(SCALE_RUNS)

fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-120} FUZZ_OUT=$${FUZZ_OUT:-$(abspath $(BUILD))/fuzz} \
		tests/fuzz/run.sh $(FUZZ_TARGETS)

format:
	@find lib services tools tests/unit tests/fuzz include -name '*.[ch]' -print0 2>/dev/null | \
		xargs -0 -r clang-format -i

api-docs: setup
	@scripts/gen_errors.py
	@scripts/build_api_docs.py

clean:
	rm -rf build build-asan
