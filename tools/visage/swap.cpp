// `visage swap`: put a source face onto the faces of target images.
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"
#include "visage/video.hpp"

namespace visage::cli {

namespace {

const char* kSwapUsage = R"(usage: visage swap -s SOURCE... -t TARGET... -o OUTPUT [options]

Puts the face of SOURCE (several -s photos of one person are averaged into one
identity) onto the faces of each TARGET image (files or directories). With one
target, OUTPUT may be a file name; otherwise it is a directory, created if
needed, that receives each result under its target's name. Outputs are written
atomically and never over an input; a batch goes on past files that fail and
lists them (exit status 1).

A TARGET video (.mp4 .mov .mkv .webm .avi .m4v .ts .mpg) is swapped frame by
frame into the OUTPUT video, keeping its timing and audio, with a progress bar
(see the video options below). A video in which no face is found in any frame
is still written (its frames unchanged) and the exit status is 1.

options:
  -s, --source IMAGE             source face photo (repeatable)
  -t, --target IMAGE|DIR         target image or directory (repeatable)
  -o, --output FILE|DIR          where results go
  --map REF[:N]=SOURCE           swap SOURCE onto the target faces that look like face N of REF
                                 (repeatable: different people get different sources in one pass)
  --face-swapper-weight W        0 = keep the target's face shape, 1 = the source's (default 1)
  --face-mask-types LIST         any of box,region,occlusion (default box,region)
  --face-mask-blur F             feathering 0..1, a quarter of it times the face size wide (default 0.2)
  --face-mask-padding T,R,B,L    box mask padding in percent (1 to 4 values)
  --face-mask-regions LIST       regions swapped: skin,left-eyebrow,right-eyebrow,left-eye,
                                 right-eye,nose,mouth,upper-lip,lower-lip (default all)
  --swap-mouth-interior          also swap teeth and tongue (default: the target's stay)
  --swap-closed-eyes             paste the source's eyes onto closed or winking target eyes too
                                 (default: a closed eye stays the target's; attention mesh)
  --colour MODE                  none, lab (default), relight, lab-relight
  --blend MODE                   feather, poisson, multiband (default)
  --face-enhancer MODEL          also enhance the swapped faces: esrgan-slim-x2/x4, esrgan-medium-x2/x4
  --face-enhancer-weight W       0..1 (default 0.8)
  --face-selector-mode MODE      many (default), one, reference
  --face-selector-order ORDER    left-right, right-left, top-bottom, bottom-top, small-large,
                                 large-small, best-worst, worst-best
  --face-selector-gender G       female or male
  --face-selector-age-start N, --face-selector-age-end N
  --reference-face IMAGE[:N]     reference face for --face-selector-mode reference
  --reference-face-distance F    maximum cosine distance to a reference (default 0.6)
  --detector NAME                blazeface (default), blazeface-front, ultraface
  --landmarker NAME              mesh-attention (default), mesh
  --detector-angles LIST         image rotations to search, e.g. 0,90,180,270
  --output-image-quality N       JPEG/WebP quality 1..100 (default 92)
  --json                         print a JSON summary (per target: output, faces, timings, error)
  --device cpu|cuda, --fp16, --threads N
)";

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

SwapCommand parse_swap_command(Args& args) {
  SwapCommand c;
  SwapOptions& options = c.options;
  options.analyser.attributes = false;
  options.analyser.runtime = parse_runtime_options(args);
  if (auto v = args.value("--detector")) options.analyser.detector = parse_face_detector(*v);
  if (auto v = args.value("--landmarker")) options.analyser.landmarker = parse_face_landmarker(*v);
  if (auto v = args.value("--detector-angles"))
    options.analyser.detector_angles = parse_int_list(*v, "--detector-angles");
  if (auto v = args.value("--face-swapper-weight")) options.shape_weight = parse_float(*v, "--face-swapper-weight");
  if (auto v = args.value("--face-mask-types")) parse_face_mask_types(*v, options.mask);
  if (auto v = args.value("--face-mask-blur")) options.mask.blur = parse_float(*v, "--face-mask-blur");
  if (auto v = args.value("--face-mask-padding")) {
    std::vector<int> p = parse_int_list(*v, "--face-mask-padding");
    if (p.empty() || p.size() > 4) throw Error(ErrorKind::bad_input, "--face-mask-padding takes 1 to 4 values");
    // CSS order and shorthand: T; T,RL; T,RL,B; T,R,B,L.
    int t = p[0], r = p.size() > 1 ? p[1] : t, b = p.size() > 2 ? p[2] : t, l = p.size() > 3 ? p[3] : r;
    options.mask.padding = {static_cast<float>(t), static_cast<float>(r), static_cast<float>(b), static_cast<float>(l)};
  }
  if (auto v = args.value("--face-mask-regions")) {
    options.mask.regions.clear();
    for (const auto& r : split_list(*v)) options.mask.regions.push_back(parse_face_mask_region(r));
  }
  if (args.flag("--swap-mouth-interior")) options.keep_mouth_interior = false;
  if (args.flag("--swap-closed-eyes")) options.keep_closed_eyes = false;
  if (auto v = args.value("--colour")) options.colour = parse_colour_transfer(*v);
  if (auto v = args.value("--blend")) options.blend = parse_blend_mode(*v);
  if (auto v = args.value("--face-enhancer")) {
    options.enhancer.enabled = true;
    options.enhancer.model = *v;
  }
  if (auto v = args.value("--face-enhancer-weight"))
    options.enhancer.weight = parse_unit_float(*v, "--face-enhancer-weight");
  FaceSelector& selector = c.selector;
  if (auto v = args.value("--face-selector-mode")) selector.mode = parse_face_selector_mode(*v);
  if (auto v = args.value("--face-selector-order")) selector.order = parse_face_order(*v);
  if (auto v = args.value("--face-selector-gender")) selector.gender = parse_gender(*v);
  if (auto v = args.value("--face-selector-age-start")) selector.age_min = parse_float(*v, "--face-selector-age-start");
  if (auto v = args.value("--face-selector-age-end")) selector.age_max = parse_float(*v, "--face-selector-age-end");
  if (auto v = args.value("--reference-face-distance"))
    selector.reference_distance = parse_float(*v, "--reference-face-distance");
  c.reference = args.value("--reference-face");
  c.sources = args.values("--source", "-s");
  c.maps = args.values("--map");
  if (selector.gender || selector.age_min || selector.age_max) options.analyser.attributes = true;
  return c;
}

PreparedSwap prepare_swap(const SwapCommand& c) {
  if (c.selector.mode == FaceSelectorMode::reference && !c.reference)
    throw Error(ErrorKind::bad_input, "--face-selector-mode reference needs --reference-face IMAGE[:N]");
  PreparedSwap p{FaceSwapper(c.options), std::nullopt, {}, c.selector};
  FaceSwapper& swapper = p.swapper;
  auto read_all = [](const std::vector<std::string>& names) {
    std::vector<at::Tensor> images;
    for (const auto& n : names) images.push_back(read_image(n).rgb);
    return images;
  };
  auto reference_embedding = [&](const std::string& text) {
    auto [path, index] = parse_face_reference(text);
    auto faces = swapper.analyser().analyse(read_image(path).rgb);
    if (index >= faces.size())
      throw Error(ErrorKind::bad_input, text + ": the image has " + std::to_string(faces.size()) + " face(s)");
    return faces[index].embedding;
  };
  if (!c.sources.empty()) p.source = swapper.prepare_source(read_all(c.sources));
  for (const auto& m : c.maps) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      throw Error(ErrorKind::bad_input, "--map needs REF[:N]=SOURCE, got '" + m + "'");
    p.mappings.push_back(
        {reference_embedding(m.substr(0, eq)), swapper.prepare_source(read_all(split_list(m.substr(eq + 1))))});
  }
  if (c.reference) p.selector.references.push_back(reference_embedding(*c.reference));
  return p;
}

int swap_images(Args& args) {
  if (args.flag("--help")) {
    std::cout << kSwapUsage << video_options_usage();
    return 0;
  }
  SwapCommand command = parse_swap_command(args);
  VideoCommand video = parse_video_command(args);
  ImageWriteOptions write_options;
  write_options.quality = args.int_or("--output-image-quality", 92);
  if (write_options.quality < 1 || write_options.quality > 100)
    throw Error(ErrorKind::bad_input, "--output-image-quality must be within 1..100");
  bool json = args.flag("--json");
  std::vector<std::string> targets = args.values("--target", "-t");
  auto output = args.value("--output");
  if (!output) output = args.value("-o");
  args.finish();
  for (const auto& p : args.positionals()) targets.push_back(p);
  if ((command.sources.empty() && command.maps.empty()) || targets.empty() || !output) {
    std::cerr << kSwapUsage;
    return 2;
  }
  std::vector<std::filesystem::path> videos;
  for (const auto& t : targets)
    if (is_video_path(t)) videos.push_back(t);
  if (!videos.empty()) {
    if (videos.size() != targets.size() || targets.size() != 1)
      throw Error(ErrorKind::bad_input, "a video target is swapped on its own: one -t VIDEO, one -o VIDEO");
    PreparedSwap prepared = prepare_swap(command);
    return swap_video_target(prepared, targets[0], *output, video, json);
  }
  PreparedSwap prepared = prepare_swap(command);
  FaceSwapper& swapper = prepared.swapper;
  std::optional<SourceFace>& source = prepared.source;
  std::vector<Mapping>& mappings = prepared.mappings;
  FaceSelector& selector = prepared.selector;
  const std::vector<std::string>& sources = command.sources;

  std::vector<std::filesystem::path> files = expand_inputs(targets);
  std::filesystem::path out_path(*output);
  bool to_file = files.size() == 1 && is_image_name(out_path) && !std::filesystem::is_directory(out_path);
  if (!to_file) std::filesystem::create_directories(out_path);

  nlohmann::json results = nlohmann::json::array();
  int failed = 0;
  for (const auto& file : files) {
    nlohmann::json entry;
    entry["target"] = file.string();
    try {
      std::filesystem::path destination = to_file ? out_path : out_path / file.filename();
      std::error_code ec;
      for (const auto& input : files)
        if (std::filesystem::equivalent(destination, input, ec))
          throw Error(ErrorKind::bad_input, destination.string() + ": refusing to overwrite an input");
      for (const auto& input : sources)
        if (std::filesystem::equivalent(destination, input, ec))
          throw Error(ErrorKind::bad_input, destination.string() + ": refusing to overwrite an input");
      image_format_from_path(destination);  // an output format we can write, before any work

      auto start = std::chrono::steady_clock::now();
      Image image = read_image(file);
      double decode_ms = ms_since(start);
      start = std::chrono::steady_clock::now();
      at::Tensor result;
      if (mappings.empty()) {
        result = swapper.swap(image.rgb, *source, selector);
      } else {
        std::vector<Face> faces = swapper.analyser().analyse(image.rgb);
        std::vector<SwapAssignment> jobs;
        for (Face& f : select_faces(std::move(faces), selector)) {
          const SourceFace* chosen = source ? &*source : nullptr;
          float best = selector.reference_distance;
          for (const auto& m : mappings) {
            float d = face_distance(f.embedding, m.reference);
            if (d < best) best = d, chosen = &m.source;
          }
          if (chosen) jobs.push_back({std::move(f), chosen});
        }
        result = swapper.swap(image.rgb, jobs);
      }
      double swap_ms = ms_since(start);
      size_t swapped = swapper.faces_swapped();
      if (swapped == 0) throw Error(ErrorKind::bad_input, "no face to swap found in the target");
      start = std::chrono::steady_clock::now();
      write_image(destination, result, write_options);
      double encode_ms = ms_since(start);
      entry["output"] = destination.string();
      entry["faces_swapped"] = swapped;
      entry["ms"] = {{"decode", decode_ms}, {"swap", swap_ms}, {"encode", encode_ms}};
      if (!json)
        std::cout << file.string() << " -> " << destination.string() << ": " << swapped << " face(s), "
                  << static_cast<int>(swap_ms) << " ms\n";
    } catch (const Error& e) {
      ++failed;
      entry["error"] = {{"kind", error_id(e.kind())}, {"message", e.what()}};
      std::cerr << "visage: " << file.string() << ": " << to_string(e.kind()) << ": " << e.what() << "\n";
    }
    results.push_back(std::move(entry));
  }
  if (json) std::cout << results.dump(2) << "\n";
  if (failed) std::cerr << "visage: " << failed << " of " << results.size() << " target(s) failed\n";
  return failed ? 1 : 0;
}

}  // namespace visage::cli
