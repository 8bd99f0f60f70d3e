// `visage bench swap-cases`: a labelled contact sheet of hard cases for the
// swap (occluders in front of either face, three-quarter sources, closed eyes,
// greyscale targets, outlines), one row per case: source | target | result
// [| result with a mask variant] | zoom on the target | zoom on the result,
// with the figures that can be measured printed in each row's label and in
// JSON (identity distances, eye openness per eye, colour left in a greyscale
// target's face).
//
// A case is "LABEL|SOURCE|TARGET[|ZOOM]". SOURCE and TARGET are image paths,
// optionally prefixed by real transformations of the photo ("grey:" =
// luminance only, "flip:" = mirrored) and suffixed with "@N" to take the
// N-th largest face (0 = largest). ZOOM: eyes, mouth, forehead, left, right,
// chin (default forehead).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <tuple>
#include <utility>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"

namespace visage::cli {

namespace {

// A 5x7 bitmap font (rows top to bottom, 5 low bits left to right) for the labels.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph font[] = {
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}}, {'C', {14, 17, 16, 16, 16, 17, 14}},
    {'D', {30, 17, 17, 17, 17, 17, 30}}, {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}}, {'I', {14, 4, 4, 4, 4, 4, 14}},
    {'J', {7, 2, 2, 2, 2, 18, 12}},      {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
    {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}}, {'O', {14, 17, 17, 17, 17, 17, 14}},
    {'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
    {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},       {'U', {17, 17, 17, 17, 17, 17, 14}},
    {'V', {17, 17, 17, 17, 17, 10, 4}},  {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
    {'Y', {17, 17, 17, 10, 4, 4, 4}},    {'Z', {31, 1, 2, 4, 8, 16, 31}},     {'0', {14, 17, 19, 21, 25, 17, 14}},
    {'1', {4, 12, 4, 4, 4, 4, 14}},      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},   {'6', {6, 8, 16, 30, 17, 17, 14}},
    {'7', {31, 1, 2, 4, 8, 8, 8}},       {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'(', {2, 4, 8, 8, 8, 4, 2}},        {')', {8, 4, 2, 2, 2, 4, 8}},        {'-', {0, 0, 0, 31, 0, 0, 0}},
    {':', {0, 12, 12, 0, 12, 12, 0}},    {'.', {0, 0, 0, 0, 0, 12, 12}},      {',', {0, 0, 0, 0, 12, 4, 8}},
    {'/', {0, 1, 2, 4, 8, 16, 0}},       {'+', {0, 4, 4, 31, 4, 4, 0}},       {'=', {0, 0, 31, 0, 31, 0, 0}},
    {'\'', {12, 4, 8, 0, 0, 0, 0}},      {'|', {4, 4, 4, 4, 4, 4, 4}},        {'_', {0, 0, 0, 0, 0, 0, 31}},
    {'%', {24, 25, 2, 4, 8, 19, 3}},     {'>', {8, 4, 2, 1, 2, 4, 8}},        {'<', {2, 4, 8, 16, 8, 4, 2}},
};

// A band `height` pixels high and `width` wide with `text` in white at 2x scale.
at::Tensor label_band(const std::string& text, int64_t width, int64_t height) {
  at::Tensor band = at::full({height, width, 3}, 40, at::kByte);
  auto a = band.accessor<uint8_t, 3>();
  const int scale = 2, advance = 6 * scale;
  int64_t x0 = 6;
  const int64_t y0 = (height - 7 * scale) / 2;
  for (char raw : text) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(raw)));
    if (x0 + 5 * scale > width) break;
    for (const Glyph& g : font) {
      if (g.c != c) continue;
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col) {
          if (!(g.rows[r] >> (4 - col) & 1)) continue;
          for (int dy = 0; dy < scale; ++dy)
            for (int dx = 0; dx < scale; ++dx) {
              int64_t y = y0 + r * scale + dy, x = x0 + col * scale + dx;
              if (y >= 0 && y < height && x < width)
                for (int k = 0; k < 3; ++k) a[y][x][k] = 235;
            }
        }
      break;
    }
    x0 += advance;
  }
  return band;
}

// A square tile of `side` image pixels centred on `centre`, `size` pixels.
at::Tensor square_tile(const at::Tensor& rgb, Point2 centre, float side, int size) {
  double s = side / size;
  Affine image_to_crop = {1 / s, 0, -(centre.x - side / 2) / s, 0, 1 / s, -(centre.y - side / 2) / s};
  return warp_face(rgb, image_to_crop, size);
}

struct PhotoSpec {
  std::string path;
  bool grey = false, flip = false;
  size_t face = 0;
};

PhotoSpec parse_photo(std::string text) {
  PhotoSpec spec;
  for (bool more = true; more;) {
    more = false;
    if (text.rfind("grey:", 0) == 0) spec.grey = more = true, text = text.substr(5);
    if (text.rfind("flip:", 0) == 0) spec.flip = more = true, text = text.substr(5);
  }
  if (auto at = text.rfind('@'); at != std::string::npos && at + 1 < text.size() &&
                                 text.find_first_not_of("0123456789", at + 1) == std::string::npos) {
    spec.face = std::stoul(text.substr(at + 1));
    text = text.substr(0, at);
  }
  spec.path = text;
  return spec;
}

at::Tensor load_photo(const PhotoSpec& spec) {
  at::Tensor rgb = read_image(spec.path).rgb;
  if (spec.flip) rgb = rgb.flip(1).contiguous();
  if (spec.grey) {
    // Rec. 601 luma, the same value in every channel: what a black-and-white photo holds.
    at::Tensor f = rgb.to(at::kFloat);
    at::Tensor y = f.select(2, 0) * 0.299f + f.select(2, 1) * 0.587f + f.select(2, 2) * 0.114f;
    rgb = y.round().clamp(0, 255).to(at::kByte).unsqueeze(2).expand({-1, -1, 3}).contiguous();
  }
  return rgb;
}

std::string describe(const PhotoSpec& spec) {
  std::string name = std::filesystem::path(spec.path).stem().string();
  if (spec.face) name += "@" + std::to_string(spec.face);
  if (spec.flip) name = "flipped " + name;
  if (spec.grey) name = "grey " + name;
  return name;
}

// The N-th largest face.
const Face* nth_largest(const std::vector<Face>& faces, size_t n) {
  std::vector<const Face*> sorted;
  for (const auto& f : faces) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(), [](const Face* a, const Face* b) { return a->box.area() > b->box.area(); });
  return n < sorted.size() ? sorted[n] : nullptr;
}

float dist(Point2 a, Point2 b) { return std::hypot(a.x - b.x, a.y - b.y); }

// Eye aspect ratio (lid gap over eye width) of the face's left and right eye
// in the image (68-point eyes 36-41 and 42-47): ~0.25-0.35 open, < 0.15 closed.
std::pair<float, float> eye_openness(const std::vector<Point2>& p) {
  auto ear = [&](int i) {
    return (dist(p[i + 1], p[i + 5]) + dist(p[i + 2], p[i + 4])) / (2.f * std::max(1e-3f, dist(p[i], p[i + 3])));
  };
  return {ear(36), ear(42)};
}

Point2 mean_of(const std::vector<Point2>& p, int first, int last) {
  Point2 m{0, 0};
  for (int i = first; i <= last; ++i) m.x += p[i].x, m.y += p[i].y;
  return {m.x / (last - first + 1), m.y / (last - first + 1)};
}

// Centre and side of the zoomed region of a face.
std::pair<Point2, float> zoom_region(const Face& face, const std::string& zoom) {
  const auto& p = face.landmarks_68;
  const float size = std::max(face.box.width, face.box.height);
  if (zoom == "eyes") return {mean_of(p, 36, 47), 0.75f * size};
  if (zoom == "mouth") return {mean_of(p, 48, 67), 0.6f * size};
  if (zoom == "left") return {p[3], 0.55f * size};
  if (zoom == "right") return {p[13], 0.55f * size};
  if (zoom == "chin") return {p[8], 0.6f * size};
  if (zoom != "forehead") throw Error(ErrorKind::bad_input, "unknown zoom '" + zoom + "'");
  Point2 brows = mean_of(p, 17, 26);
  return {{brows.x, brows.y - 0.12f * size}, 0.65f * size};
}

// Colour left in a face region: the mean and 99th percentile of max - min over the channels.
std::pair<float, float> chroma(const at::Tensor& rgb, const Box& box) {
  int64_t x0 = std::clamp<int64_t>(std::lround(box.x), 0, rgb.size(1) - 1);
  int64_t y0 = std::clamp<int64_t>(std::lround(box.y), 0, rgb.size(0) - 1);
  int64_t x1 = std::clamp<int64_t>(std::lround(box.x + box.width), x0 + 1, rgb.size(1));
  int64_t y1 = std::clamp<int64_t>(std::lround(box.y + box.height), y0 + 1, rgb.size(0));
  at::Tensor r = rgb.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0).to(at::kFloat);
  at::Tensor spread = (std::get<0>(r.max(2)) - std::get<0>(r.min(2))).flatten();
  float p99 = at::quantile(spread, 0.99).item<float>();
  return {spread.mean().item<float>(), p99};
}

std::string fixed(float v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

namespace {

const char* kBenchSwapCasesUsage = R"(usage: visage bench swap-cases --case 'LABEL|SOURCE|TARGET[|ZOOM]'... [options]

A labelled contact sheet of hard swap cases, one row per --case:
source | target | result [| variant] | target zoom | result zoom, with identity
distances, eye openness and colour left in a greyscale target's face.
SOURCE and TARGET may be prefixed with grey: or flip: and suffixed with @N
(the N-th largest face). ZOOM: eyes, mouth, forehead (default), left, right, chin.

options:
  --sheet FILE                 write the sheet (JPEG)
  --json FILE                  also write the figures as JSON
  --variant none|occlusion     add a column with the occlusion mask toggled
  --tile N                     tile size in pixels (default 180), --quality N (JPEG, default 85)
  --face-swapper-weight W, --device cpu|cuda, --fp16, --threads N
)";

}  // namespace

int bench_swap_cases(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchSwapCasesUsage;
    return 0;
  }
  std::vector<std::string> cases = args.values("--case");
  auto sheet_path = args.value("--sheet");
  auto json_path = args.value("--json");
  std::string variant = args.value_or("--variant", "none");
  int tile = args.int_or("--tile", 180);
  int quality = args.int_or("--quality", 85);
  SwapOptions options;
  if (auto v = args.value("--face-swapper-weight")) options.shape_weight = parse_float(*v, "--face-swapper-weight");
  options.analyser.runtime = parse_runtime_options(args);
  args.finish();
  if (cases.empty()) throw Error(ErrorKind::bad_input, "bench swap-cases needs --case LABEL|SOURCE|TARGET[|ZOOM]");
  if (variant != "none" && variant != "occlusion")
    throw Error(ErrorKind::bad_input, "--variant: none or occlusion, got '" + variant + "'");
  options.analyser.attributes = false;
  SwapOptions varied = options;
  varied.mask.occlusion = !options.mask.occlusion;
  FaceSwapper swapper(options);
  std::optional<FaceSwapper> variant_swapper;
  if (variant == "occlusion") variant_swapper.emplace(varied);
  FaceAnalyser& judge = swapper.analyser();

  std::vector<std::string> headers = {"source", "target", "result"};
  if (variant_swapper) headers.push_back(varied.mask.occlusion ? "occlusion mask on" : "occlusion mask off");
  headers.insert(headers.end(), {"target zoom", "result zoom"});
  const int64_t sheet_w = tile * static_cast<int64_t>(headers.size()), band_h = 22;
  std::vector<at::Tensor> sheet;
  {
    std::vector<at::Tensor> head;
    for (const auto& h : headers) head.push_back(label_band(h, tile, band_h));
    sheet.push_back(at::cat(head, 1));
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& text : cases) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, '|');) parts.push_back(item);
    if (parts.size() < 3 || parts.size() > 4)
      throw Error(ErrorKind::bad_input, "--case '" + text + "': expected LABEL|SOURCE|TARGET[|ZOOM]");
    const std::string zoom = parts.size() == 4 ? parts[3] : "forehead";
    PhotoSpec src_spec = parse_photo(parts[1]), tgt_spec = parse_photo(parts[2]);
    at::Tensor src_rgb = load_photo(src_spec), tgt_rgb = load_photo(tgt_spec);
    auto src_faces = judge.analyse(src_rgb);
    const Face* src_face_ptr = nth_largest(src_faces, src_spec.face);
    if (!src_face_ptr) throw Error(ErrorKind::bad_input, parts[1] + ": no such face");
    const Face src_face = *src_face_ptr;
    auto tgt_faces = judge.analyse(tgt_rgb);
    const Face* tgt_face_ptr = nth_largest(tgt_faces, tgt_spec.face);
    if (!tgt_face_ptr) throw Error(ErrorKind::bad_input, parts[2] + ": no such face");
    const Face tgt_face = *tgt_face_ptr;
    // prepare_source takes a photo's largest face.
    if (src_spec.face != 0) throw Error(ErrorKind::bad_input, parts[1] + ": a source must be the photo's largest face");
    SourceFace source = swapper.prepare_source({src_rgb});
    at::Tensor out = swapper.swap(tgt_rgb, std::vector<SwapAssignment>{{tgt_face, &source}});
    at::Tensor out_variant;
    if (variant_swapper) {
      SourceFace vs = variant_swapper->prepare_source({src_rgb});
      out_variant = variant_swapper->swap(tgt_rgb, std::vector<SwapAssignment>{{tgt_face, &vs}});
    }
    auto found = judge.analyse(out);
    const Face* res = nearest_face(found, tgt_face.box);
    nlohmann::json row = {{"label", parts[0]}, {"source", parts[1]}, {"target", parts[2]}};
    std::string figures;
    if (res) {
      float d_src = face_distance(res->embedding, src_face.embedding);
      float d_tgt = face_distance(res->embedding, tgt_face.embedding);
      auto [tl, tr] = eye_openness(tgt_face.landmarks_68);
      auto [rl, rr] = eye_openness(res->landmarks_68);
      row["to_source"] = d_src, row["to_target"] = d_tgt;
      row["eyes_target"] = {tl, tr}, row["eyes_result"] = {rl, rr};
      // The attention mesh's lid gap follows a blink (the 68 points' does
      // not): shown instead when both faces have it.
      std::string eyes = "eyes";
      if (tgt_face.eye_openness && res->eye_openness) {
        std::tie(tl, tr) = std::pair{(*tgt_face.eye_openness)[0], (*tgt_face.eye_openness)[1]};
        std::tie(rl, rr) = std::pair{(*res->eye_openness)[0], (*res->eye_openness)[1]};
        row["lids_target"] = {tl, tr}, row["lids_result"] = {rl, rr};
        eyes = "lids";
      }
      figures = "d src " + fixed(d_src, 2) + " tgt " + fixed(d_tgt, 2) + ", " + eyes + " " + fixed(tl, 2) + "/" +
                fixed(tr, 2) + " > " + fixed(rl, 2) + "/" + fixed(rr, 2);
    } else {
      figures = "face not found again";
      row["found_again"] = false;
    }
    // A greyscale target (converted, or a black-and-white photo): how much colour the result has there.
    if (tgt_spec.grey || chroma(tgt_rgb, tgt_face.box).second <= 3.f) {
      auto [mean_c, p99_c] = chroma(out, tgt_face.box);
      row["result_chroma_mean"] = mean_c, row["result_chroma_p99"] = p99_c;
      figures += ", colour " + fixed(mean_c, 1) + " p99 " + fixed(p99_c, 1);
    }
    std::cout << parts[0] << " [" << describe(src_spec) << " -> " << describe(tgt_spec) << "]: " << figures << "\n";
    rows.push_back(row);
    if (sheet_path) {
      auto [zc, zs] = zoom_region(tgt_face, zoom);
      float side = std::max(tgt_face.box.width, tgt_face.box.height) * 1.8f;
      std::vector<at::Tensor> tiles = {
          square_tile(src_rgb, src_face.box.centre(), std::max(src_face.box.width, src_face.box.height) * 1.8f, tile),
          square_tile(tgt_rgb, tgt_face.box.centre(), side, tile), square_tile(out, tgt_face.box.centre(), side, tile)};
      if (variant_swapper) tiles.push_back(square_tile(out_variant, tgt_face.box.centre(), side, tile));
      tiles.push_back(square_tile(tgt_rgb, zc, zs, tile));
      tiles.push_back(square_tile(out, zc, zs, tile));
      std::string label = parts[0] + ": " + describe(src_spec) + " > " + describe(tgt_spec) + ". " + figures;
      // Long labels wrap onto further bands.
      const size_t per_band = static_cast<size_t>((sheet_w - 12) / 12);
      for (; label.size() > per_band; label = label.substr(per_band))
        sheet.push_back(label_band(label.substr(0, per_band), sheet_w, band_h));
      sheet.push_back(label_band(label, sheet_w, band_h));
      sheet.push_back(at::cat(tiles, 1));
    }
  }
  if (sheet_path) {
    write_image(*sheet_path, at::cat(sheet, 0), {.quality = quality});
    std::cout << "contact sheet: " << *sheet_path << "\n";
  }
  if (json_path) {
    std::string dumped = nlohmann::json{{"cases", rows}}.dump(2);
    write_file_atomically(*json_path, std::span(reinterpret_cast<const uint8_t*>(dumped.data()), dumped.size()));
  }
  return 0;
}

}  // namespace visage::cli
