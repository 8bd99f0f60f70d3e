#!/usr/bin/env bash
# Checks the FFmpeg bundle made by scripts/gpu_ffmpeg_bundle.sh on this
# machine: a small C program built against the bundle's headers and
# libraries (as Visage is, with -rpath-link and no pkg-config) encodes frames
# with libx264 into an MP4, reads them back through avformat_open_input and
# the h264 decoder, converts with swscale, and compares with what it wrote.
# It runs with LD_LIBRARY_PATH pointing at the bundle in an otherwise empty
# environment, lists the shared objects it has mapped (/proc/self/maps), and
# the check fails unless every FFmpeg-closure library came from the bundle and
# everything else is one of the system libraries the bundle leaves out (those
# every Linux machine has). With a binary as argument, also checks that
# binary's resolution through ldd (e.g. build-ffgpu/visage).
# Usage: scripts/gpu_ffmpeg_verify.sh [bundle_dir] [binary...]
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(realpath "${1:-.gpu/ffmpeg}")
shift || true
[ -d "$bundle/lib" ] || { echo "no bundle at $bundle: run scripts/gpu_ffmpeg_bundle.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# What may come from outside the bundle (gpu_ffmpeg_bundle.sh's system list).
allowed='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-x86-64\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libz\.so\.1)(\.[0-9.]+)?$'
cat > "$tmp/roundtrip.c" <<'EOF'
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 160, H = 96, FRAMES = 12 };
static int expected_y(int x, int y, int t) { return 16 + (x * 3 + y * 2 + t * 7) % 200; }
#define CHECK(cond, what) do { if (!(cond)) { fprintf(stderr, "FAIL: %s\n", what); exit(1); } } while (0)

static void write_packets(AVCodecContext *enc, AVFormatContext *fmt, AVStream *st, AVFrame *frame) {
  AVPacket *pkt = av_packet_alloc();
  CHECK(avcodec_send_frame(enc, frame) >= 0, "avcodec_send_frame");
  while (avcodec_receive_packet(enc, pkt) >= 0) {
    pkt->duration = 1; /* else the MP4 edit list leaves the last frame out */
    av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    CHECK(av_interleaved_write_frame(fmt, pkt) >= 0, "av_interleaved_write_frame");
  }
  av_packet_free(&pkt);
}

int main(int argc, char **argv) {
  const char *path = argv[1];
  avdevice_register_all();
  CHECK(avformat_network_init() == 0, "avformat_network_init");
  printf("FFmpeg %s, swresample %u\n", av_version_info(), swresample_version());
  /* Encode with libx264 into MP4. */
  const AVCodec *x264 = avcodec_find_encoder_by_name("libx264");
  CHECK(x264, "libx264 encoder not found");
  AVFormatContext *out = NULL;
  CHECK(avformat_alloc_output_context2(&out, NULL, "mp4", path) >= 0, "mp4 muxer");
  AVStream *st = avformat_new_stream(out, NULL);
  AVCodecContext *enc = avcodec_alloc_context3(x264);
  enc->width = W; enc->height = H; enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = (AVRational){1, 25}; enc->framerate = (AVRational){25, 1};
  enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_opt_set(enc->priv_data, "preset", "ultrafast", 0);
  av_opt_set(enc->priv_data, "qp", "4", 0);
  CHECK(avcodec_open2(enc, x264, NULL) >= 0, "open libx264");
  CHECK(avcodec_parameters_from_context(st->codecpar, enc) >= 0, "codec parameters");
  st->time_base = enc->time_base;
  CHECK(avio_open(&out->pb, path, AVIO_FLAG_WRITE) >= 0, "avio_open");
  CHECK(avformat_write_header(out, NULL) >= 0, "write header");
  AVFrame *frame = av_frame_alloc();
  frame->width = W; frame->height = H; frame->format = AV_PIX_FMT_YUV420P;
  CHECK(av_frame_get_buffer(frame, 0) >= 0, "frame buffer");
  for (int t = 0; t < FRAMES; ++t) {
    CHECK(av_frame_make_writable(frame) >= 0, "writable");
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) frame->data[0][y * frame->linesize[0] + x] = expected_y(x, y, t);
    for (int p = 1; p < 3; ++p)
      for (int y = 0; y < H / 2; ++y) memset(frame->data[p] + y * frame->linesize[p], 128, W / 2);
    frame->pts = t;
    write_packets(enc, out, st, frame);
  }
  write_packets(enc, out, st, NULL);
  CHECK(av_write_trailer(out) >= 0, "trailer");
  avio_closep(&out->pb);
  avformat_free_context(out);
  avcodec_free_context(&enc);

  /* Read it back: demux, decode with FFmpeg's h264 decoder, convert to RGB. */
  AVFormatContext *in = NULL;
  CHECK(avformat_open_input(&in, path, NULL, NULL) >= 0, "avformat_open_input");
  CHECK(avformat_find_stream_info(in, NULL) >= 0, "find_stream_info");
  const AVCodec *h264 = NULL;
  int vs = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, &h264, 0);
  CHECK(vs >= 0 && h264, "video stream");
  printf("decoder: %s\n", h264->name);
  AVCodecContext *dec = avcodec_alloc_context3(h264);
  CHECK(avcodec_parameters_to_context(dec, in->streams[vs]->codecpar) >= 0, "decoder parameters");
  CHECK(avcodec_open2(dec, h264, NULL) >= 0, "open decoder");
  struct SwsContext *sws = sws_getContext(W, H, AV_PIX_FMT_YUV420P, W, H, AV_PIX_FMT_RGB24, SWS_POINT, NULL, NULL, NULL);
  CHECK(sws, "sws_getContext");
  uint8_t *rgb = malloc(W * H * 3);
  double rgb_err = 0;
  AVPacket *pkt = av_packet_alloc();
  int decoded = 0;
  double err = 0;
  for (int flushing = 0;;) {
    if (!flushing) {
      if (av_read_frame(in, pkt) < 0) {
        flushing = 1;
        avcodec_send_packet(dec, NULL);
      } else {
        if (pkt->stream_index == vs) CHECK(avcodec_send_packet(dec, pkt) >= 0, "send packet");
        av_packet_unref(pkt);
      }
    }
    int got = 0;
    while (avcodec_receive_frame(dec, frame) >= 0) {
      got = 1;
      uint8_t *dst[1] = {rgb};
      int dst_stride[1] = {W * 3};
      CHECK(frame->width == W && frame->height == H, "decoded size");
      sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0, H, dst, dst_stride);
      /* Luma as decoded, and as swscale turns it into RGB (limited-range
         BT.601 grey: R = G = B = (Y - 16) * 255 / 219). */
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          int e = expected_y(x, y, decoded);
          err += abs(frame->data[0][y * frame->linesize[0] + x] - e);
          for (int c = 0; c < 3; ++c) rgb_err += fabs(rgb[(y * W + x) * 3 + c] - (e - 16) * 255.0 / 219.0);
        }
      if (getenv("ROUNDTRIP_DEBUG")) fprintf(stderr, "frame pts %lld best %lld\n", (long long)frame->pts, (long long)frame->best_effort_timestamp);
      ++decoded;
    }
    if (flushing && !got) break;
  }
  err /= (double)decoded * W * H;
  rgb_err /= (double)decoded * W * H * 3;
  printf("decoded %d of %d frames, mean abs error %.3f (luma), %.3f (RGB from swscale)\n", decoded, FRAMES, err, rgb_err);
  CHECK(decoded == FRAMES, "frame count");
  CHECK(err < 2.0, "decoded frames differ from the encoded ones");
  CHECK(rgb_err < 3.0, "swscale's RGB differs from the decoded luma");
  avformat_network_deinit();
  /* Which shared objects this process mapped. */
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[4096];
  while (fgets(line, sizeof line, maps)) {
    char *p = strchr(line, '/');
    if (p && strstr(p, ".so")) printf("mapped %s", p);
  }
  return 0;
}
EOF
gcc -O1 -o "$tmp/roundtrip" "$tmp/roundtrip.c" -I"$bundle/include" -L"$bundle/lib" "-Wl,-rpath-link,$bundle/lib" \
  -lavdevice -lavformat -lavcodec -lswscale -lswresample -lavutil -lm
env -i ${ROUNDTRIP_DEBUG:+ROUNDTRIP_DEBUG=1} LD_LIBRARY_PATH="$bundle/lib" LD_BIND_NOW=1 "$tmp/roundtrip" "$tmp/roundtrip.mp4" > "$tmp/run.log" \
  || { cat "$tmp/run.log"; echo "FAIL: the round trip through the bundle failed" >&2; exit 1; }
grep -v '^mapped' "$tmp/run.log"
status=0
mapped=$(sed -n 's/^mapped //p' "$tmp/run.log" | sort -u)
# Everything outside the bundle must be an allowed system library...
while read -r path; do
  [ -n "$path" ] || continue
  name=$(basename "$path")
  if [[ $path != "$bundle"/lib/* && $path != "$tmp"/* ]] && ! [[ $name =~ $allowed ]]; then
    echo "FAIL: $path was loaded from outside the bundle" >&2
    status=1
  fi
done <<< "$mapped"
# ...and every library of the bundle must have been loaded (BIND_NOW loads
# the whole closure), from the bundle.
in_bundle=$(grep -c "^$bundle/lib/" <<< "$mapped" || true)
files=$(find "$bundle/lib" -maxdepth 1 -type f -name '*.so*' | wc -l)
echo "loaded from the bundle: $in_bundle of its $files libraries; from the system:" \
  $(grep -v "^$bundle/lib/" <<< "$mapped" | xargs -n1 basename | sort -u)
[ "$in_bundle" -eq "$files" ] || { echo "FAIL: not every bundled library was loaded" >&2; status=1; }
for bin in "$@"; do
  # ldd resolves every DT_NEEDED of the binary and of its libraries.
  trace=$(env LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin")
  if grep -q "not found" <<< "$trace"; then
    grep "not found" <<< "$trace" >&2
    status=1
  fi
  for f in "$bundle"/lib/*.so.*; do
    name=$(basename "$f")
    got=$(awk -v n="$name" '$1 == n {print $3}' <<< "$trace")
    if [ -n "$got" ] && [ "$(realpath "$got")" != "$(realpath "$f")" ]; then
      echo "FAIL: $bin resolves $name to $got" >&2
      status=1
    fi
  done
  echo "$bin: $(grep -c "$bundle/lib/" <<< "$trace") libraries resolved from the bundle"
done
[ $status -eq 0 ] && echo "bundle OK: $bundle ($(du -sh --apparent-size "$bundle" | cut -f1))"
exit $status
