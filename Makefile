# Visage: the two commands of the README's quick start are `make demo` and
# `make test`. Both install what is missing, build, and are safe to repeat.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DVISAGE_WERROR=ON
OUT_DIR ?= out

.PHONY: all deps build test check-format format demo goldens verify-models clean

all: build

# Debian packages, npm packages, model checksums (scripts/install_deps.sh).
deps:
	bash scripts/install_deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

check-format:
	bash scripts/check_format.sh

format:
	bash scripts/check_format.sh --fix

# Every test; a missing model install fails instead of skipping.
# ctest's summary is the last thing printed.
test: build check-format
	cd $(BUILD_DIR) && VISAGE_REQUIRE_NPM=1 ctest --output-on-failure -j$(JOBS)

# The main job on built-in defaults. Until face swapping exists: the runtime
# benchmark on the bundled models, written to $(OUT_DIR)/.
# Until face swapping lands (issue #4) the main job is face analysis of the
# bundled sample photos: a table on screen, JSON and debug images in out/.
DEMO_PHOTOS := /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg \
	third_party/npm/node_modules/@vladmandic/face-api/demo/sample1.jpg \
	third_party/npm/node_modules/@vladmandic/face-api/demo/sample5.jpg
demo: build
	mkdir -p $(OUT_DIR)/analyse
	./$(BUILD_DIR)/visage analyse $(DEMO_PHOTOS) --debug-out $(OUT_DIR)/analyse
	./$(BUILD_DIR)/visage analyse $(DEMO_PHOTOS) --json > $(OUT_DIR)/analyse.json.tmp && mv $(OUT_DIR)/analyse.json.tmp $(OUT_DIR)/analyse.json
	@echo "demo: faces drawn in $(OUT_DIR)/analyse/*.debug.png, details in $(OUT_DIR)/analyse.json"

# Regenerates tests/goldens/ with the reference runtimes (needs `make deps`).
goldens: deps
	node scripts/make_goldens.mjs

verify-models:
	bash scripts/verify_models.sh

clean:
	rm -rf $(BUILD_DIR) $(OUT_DIR)
