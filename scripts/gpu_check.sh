#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU and a CUDA build of PyTorch: builds
# Visage against that torch's libtorch with VISAGE_CUDA=ON, runs the parity
# tests on CUDA (fp32 and fp16 against the committed goldens) and the runtime
# benchmark on CPU and CUDA. Needs .gpu/ from scripts/gpu_bundle.sh.
# Results go to $OUT (or out/gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu}
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' | tee "$out/versions.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/versions.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$out/versions.txt"
# The carried image libraries (and their dependencies, which the linker
# also looks for on this path) come from .gpu/lib.
export LD_LIBRARY_PATH=$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# FFmpeg from scripts/gpu_ffmpeg_bundle.sh (gpu_bundle.sh with
# VISAGE_GPU_VIDEO=1 packs it); without it the library builds without video.
if [ -f .gpu/ffmpeg.tar.xz ] && [ ! -d .gpu/ffmpeg ]; then
  if command -v xz > /dev/null; then
    tar xJf .gpu/ffmpeg.tar.xz -C .gpu
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu/ffmpeg.tar.xz .gpu
  fi
fi
video_flags=(-DVISAGE_VIDEO=OFF)
if [ -d .gpu/ffmpeg ]; then
  video_flags=(-DVISAGE_VIDEO=ON -DLIBAV_ROOT="$PWD/.gpu/ffmpeg")
  scripts/gpu_ffmpeg_verify.sh .gpu/ffmpeg > "$out/ffmpeg_verify.log" 2>&1
  tail -2 "$out/ffmpeg_verify.log"
fi
start=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DVISAGE_CUDA=ON -DVISAGE_WERROR=OFF "${video_flags[@]}" \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$PWD/.gpu" -DGTEST_ROOT="$PWD/.gpu" > "$out/configure.log" 2>&1 \
  || { tail -40 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" -- -k > "$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | sort -u | head -40; exit 1; }
echo "build: $(( $(date +%s) - start )) s" | tee -a "$out/versions.txt"
export VISAGE_NPM_DIR=$PWD/.gpu/third_party/npm/node_modules
# The tests read Debian's matplotlib sample portrait from its Debian path.
sample_data=/usr/share/matplotlib/mpl-data/sample_data
if [ ! -f $sample_data/grace_hopper.jpg ] && [ -f .gpu/grace_hopper.jpg ]; then
  mkdir -p $sample_data && cp .gpu/grace_hopper.jpg $sample_data/
fi
if [ -f .gpu/onnx-node-tests.tgz ]; then
  mkdir -p /tmp/onnx-node-tests && tar xzf .gpu/onnx-node-tests.tgz -C /tmp/onnx-node-tests
  export VISAGE_ONNX_NODE_TESTS=/tmp/onnx-node-tests/node
fi
# A pip torch's libtorch.so exports std::filesystem symbols of its own that
# crash when called (remove_all, seen in the tests' temporary-directory
# clean-up); load the system libstdc++ first so those bind to it.
export LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6)
# FFmpeg's libraries and stubs for the Visage programs (and the bundle's
# ffmpeg/ffprobe, which the video tests make their clips with) only: the stubs
# would shadow real libraries of other programs (cmake's libxml2, for one).
if [ -d .gpu/ffmpeg ]; then
  export LD_LIBRARY_PATH=$PWD/.gpu/ffmpeg/lib:$LD_LIBRARY_PATH PATH=$PWD/.gpu/ffmpeg/bin:$PATH
fi
build-gpu/tests/visage_tests --gtest_filter="${VISAGE_GPU_TESTS:-*}" 2>&1 | tee "$out/tests.log" | grep -E "^\[  (FAILED|PASSED|SKIPPED) |OK \]|tests ran|error" | tail -60
if [ -z "${VISAGE_SKIP_RUNTIME_BENCH:-}" ]; then
  # VISAGE_BENCH_DEVICE=cuda leaves out the CPU rows (VISAGE_BENCH_ARGS: e.g. --models a,b).
  build-gpu/visage bench runtime --device "${VISAGE_BENCH_DEVICE:-all}" --threads "${VISAGE_BENCH_THREADS:-2}" \
    --json "$out/bench_gpu.json" ${VISAGE_BENCH_ARGS:-} 2>&1 | tee "$out/bench.log"
fi
# fp16 precision by layer (tests/runtime_cuda_test.cpp, RuntimeFp16) with
# more of the model kept in float32: VISAGE_FP16_SWEEP="tail:head ..." runs
# it once per pair (VISAGE_FP16_FP32_TAIL / VISAGE_FP16_FP32_HEAD, see
# src/runtime/model.cpp).
for pair in ${VISAGE_FP16_SWEEP:-}; do
  VISAGE_FP16_FP32_TAIL=${pair%%:*} VISAGE_FP16_FP32_HEAD=${pair##*:} build-gpu/tests/visage_tests \
    --gtest_filter='RuntimeFp16.*' 2>&1 | grep -E "output [0-9]+ rel_err" | sed "s/^/tail:head $pair /" \
    | tee -a "$out/fp16_sweep.log"
done
# Per-step GPU times (the device synchronised around every step) of the
# models in VISAGE_PROFILE_MODELS (comma-separated bench ids), fp32 and fp16.
if [ -n "${VISAGE_PROFILE_MODELS:-}" ]; then
  VISAGE_PROFILE_STEPS=1 build-gpu/visage bench runtime --device cuda --models "$VISAGE_PROFILE_MODELS" \
    --configs cuda-fp32,cuda-fp16 --iterations 20 --warmup 3 > "$out/profile.log" 2>&1
  grep -E "visage profile|^  op " "$out/profile.log" | head -80
fi
if [ -z "${VISAGE_SKIP_ANALYSE_BENCH:-}" ]; then
build-gpu/visage bench analyse --device all --threads "${VISAGE_BENCH_THREADS:-2}" --json "$out/bench_analyse_gpu.json" \
  2>&1 | tee "$out/bench_analyse.log"
fi
if [ -z "${VISAGE_SKIP_SWAP_BENCH:-}" ]; then
  for args in "--device cuda" "--device cuda --fp16" "--device cuda --fp16 --cuda-graphs --landmarker mesh --tile-size -1" \
              "--device cpu --threads ${VISAGE_BENCH_THREADS:-2}"; do
    tag=$(echo "$args" | tr -d ' -' )
    build-gpu/visage bench swap $args --json "$out/bench_swap_$tag.json" 2>&1 | tee -a "$out/bench_swap.log"
  done
fi
# The whole video pipeline on a clip put into .gpu/media/ (VISAGE_VIDEO_BENCH=clip name):
# NVDEC or software decoding, CUDA fp16 swaps, x264 on this machine's cores.
if [ -n "${VISAGE_VIDEO_BENCH:-}" ] && [ -d .gpu/ffmpeg ]; then
  clip=.gpu/media/$VISAGE_VIDEO_BENCH
  face=.gpu/third_party/debian/skimage/astronaut.png
  # VISAGE_VIDEO_BENCH_ARGS: configurations separated by ';' (default: worker counts, NVDEC).
  IFS=';' read -ra configs <<< "${VISAGE_VIDEO_BENCH_ARGS:---device cuda --fp16 --workers 2;--device cuda --fp16 --workers 4;--device cuda --fp16 --workers 4 --hwaccel cuda}"
  for args in "${configs[@]}"; do
    tag=$(echo "$args" | tr -d ' -' )
    build-gpu/visage bench video --video "$clip" --source "$face" --landmarker mesh --detector blazeface-front $args \
      --json "$out/bench_video_$tag.json" 2>&1 | tee -a "$out/bench_video.log"
  done
fi
