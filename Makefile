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

# The main job on built-in defaults: face swap of bundled photos. The source
# is scikit-image's astronaut portrait (Debian python3-skimage); the targets
# are Debian's matplotlib portrait and a face-api group photo (every face
# swapped). Results and a JSON summary go to $(OUT_DIR)/swap/; face analysis
# of the same photos (debug drawings) to $(OUT_DIR)/analyse/.
NPM_DIR := third_party/npm/node_modules
DEMO_SOURCE := third_party/debian/skimage/astronaut.png
DEMO_TARGETS := /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg \
	$(NPM_DIR)/@vladmandic/face-api/demo/sample1.jpg
# The video part: a clip made with FFmpeg from a bundled photo (with a tone as
# its audio track), swapped into $(OUT_DIR)/video/swapped.mp4.
DEMO_VIDEO_PHOTO := /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg
demo: build
	mkdir -p $(OUT_DIR)/swap $(OUT_DIR)/analyse
	./$(BUILD_DIR)/visage swap -s $(DEMO_SOURCE) $(addprefix -t ,$(DEMO_TARGETS)) -o $(OUT_DIR)/swap --json \
		> $(OUT_DIR)/swap/summary.json.tmp && mv $(OUT_DIR)/swap/summary.json.tmp $(OUT_DIR)/swap/summary.json
	./$(BUILD_DIR)/visage analyse $(DEMO_SOURCE) $(DEMO_TARGETS) --debug-out $(OUT_DIR)/analyse
	mkdir -p $(OUT_DIR)/video
	ffmpeg -v error -y -loop 1 -i $(DEMO_VIDEO_PHOTO) -f lavfi -i sine=frequency=440:sample_rate=44100 \
		-filter_complex "[0:v]scale=640:-2,crop=480:480:x='40+20*t':y=20,format=yuv420p[v]" -map '[v]' -map 1:a \
		-t 3 -r 25 -c:v libx264 -preset veryfast -c:a aac $(OUT_DIR)/video/clip.mp4
	./$(BUILD_DIR)/visage swap -s $(DEMO_SOURCE) -t $(OUT_DIR)/video/clip.mp4 -o $(OUT_DIR)/video/swapped.mp4
	@echo "demo: swapped images in $(OUT_DIR)/swap/ (summary.json), face analysis drawings in $(OUT_DIR)/analyse/,"
	@echo "      a 3 s clip panning over $(notdir $(DEMO_VIDEO_PHOTO)) and its swap in $(OUT_DIR)/video/"

# Regenerates tests/goldens/ with the reference runtimes (needs `make deps`).
goldens: deps
	node scripts/make_goldens.mjs

verify-models:
	bash scripts/verify_models.sh

clean:
	rm -rf $(BUILD_DIR) $(OUT_DIR)
