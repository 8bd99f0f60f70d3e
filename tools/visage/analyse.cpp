// `visage analyse`: faces, landmarks, identity and attributes of images.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::cli {

namespace {

const char* kAnalyseUsage = R"(usage: visage analyse IMAGE|DIR... [options]

Finds the faces in each image and prints, per face, its box, scores, roll,
age and gender (a table, or JSON with --json).

options:
  --json                       print JSON (boxes, 5/68/468 points, attributes) instead of a table
  --embedding                  include each face's embedding in the JSON
  --debug-out DIR              write DIR/<name>.debug.png with boxes, landmarks and the face outline drawn
  --detector NAME              blazeface (default), blazeface-front, ultraface
  --landmarker NAME            mesh-attention (default, 478 points), mesh (468), none
  --recognizer NAME            arcface (default, 512-d), mobilefacenet (192-d)
  --detector-score F           minimum detector score (default 0.5)
  --detector-angles LIST       image rotations to search, e.g. 0,90,180,270 (default 0)
  --tile-size N                detect on N-pixel tiles too (0 = automatic, -1 = never)
  --no-attributes              skip age and gender
  --selector-mode MODE         many (default), one, reference
  --order ORDER                none, left-right, right-left, top-bottom, bottom-top,
                               small-large, large-small, best-worst, worst-best
  --gender female|male         keep faces of this gender
  --age-min N, --age-max N     keep faces in this age range
  --reference IMAGE[:N]        reference face (the N-th face of IMAGE, by default 0) for --selector-mode reference
  --reference-distance F       maximum cosine distance to the reference (default 0.6)
  --device cpu|cuda            where the networks run (default cpu)
  --fp16                       half precision (CUDA)
  --threads N                  CPU threads (default: all cores)
)";

nlohmann::json points_json(const auto& points) {
  nlohmann::json out = nlohmann::json::array();
  auto round2 = [](float v) { return std::round(v * 100.f) / 100.f; };
  for (const auto& p : points) {
    if constexpr (requires { p.z; })
      out.push_back({round2(p.x), round2(p.y), round2(p.z)});
    else
      out.push_back({round2(p.x), round2(p.y)});
  }
  return out;
}

nlohmann::json face_json(const Face& f, bool with_embedding) {
  nlohmann::json j;
  j["box"] = {f.box.x, f.box.y, f.box.width, f.box.height};
  j["detector_score"] = f.detector_score;
  j["landmark_score"] = f.landmark_score;
  j["detector_angle"] = f.detector_angle;
  j["roll"] = f.roll;
  j["landmarks_5"] = points_json(f.landmarks_5);
  if (!f.landmarks_68.empty()) j["landmarks_68"] = points_json(f.landmarks_68);
  if (!f.mesh.empty()) j["mesh"] = points_json(f.mesh);
  if (f.age) j["age"] = *f.age;
  if (f.gender != Gender::unknown) {
    j["gender"] = std::string(to_string(f.gender));
    j["gender_score"] = f.gender_score;
  }
  if (with_embedding && !f.embedding.empty()) j["embedding"] = f.embedding;
  return j;
}

}  // namespace

int analyse_images(Args& args) {
  if (args.flag("--help")) {
    std::cout << kAnalyseUsage;
    return 0;
  }
  FaceAnalyserOptions options;
  if (auto v = args.value("--detector")) options.detector = parse_face_detector(*v);
  if (auto v = args.value("--landmarker")) options.landmarker = parse_face_landmarker(*v);
  if (auto v = args.value("--recognizer")) options.recognizer = parse_face_recognizer(*v);
  if (auto v = args.value("--detector-score")) options.detector_score = parse_float(*v, "--detector-score");
  if (auto v = args.value("--detector-angles")) options.detector_angles = parse_int_list(*v, "--detector-angles");
  options.tile_size = args.int_or("--tile-size", 0);
  if (args.flag("--no-attributes")) options.attributes = false;
  options.runtime = parse_runtime_options(args);

  FaceSelector selector;
  if (auto v = args.value("--selector-mode")) selector.mode = parse_face_selector_mode(*v);
  if (auto v = args.value("--order")) selector.order = parse_face_order(*v);
  if (auto v = args.value("--gender")) selector.gender = parse_gender(*v);
  if (auto v = args.value("--age-min")) selector.age_min = parse_float(*v, "--age-min");
  if (auto v = args.value("--age-max")) selector.age_max = parse_float(*v, "--age-max");
  if (auto v = args.value("--reference-distance"))
    selector.reference_distance = parse_float(*v, "--reference-distance");
  auto reference = args.value("--reference");
  bool json = args.flag("--json");
  bool with_embedding = args.flag("--embedding");
  auto debug_out = args.value("--debug-out");
  args.finish();
  if (args.positionals().empty()) {
    std::cerr << kAnalyseUsage;
    return 2;
  }
  if (selector.mode == FaceSelectorMode::reference && !reference)
    throw Error(ErrorKind::bad_input, "--selector-mode reference needs --reference IMAGE[:N]");
  if (selector.gender || selector.age_min || selector.age_max) options.attributes = true;

  FaceAnalyser analyser(options);
  if (reference) {
    auto [path, index] = parse_face_reference(*reference);
    auto faces = analyser.analyse(read_image(path).rgb);
    if (index >= faces.size())
      throw Error(ErrorKind::bad_input,
                  "--reference " + *reference + ": the image has " + std::to_string(faces.size()) + " face(s)");
    selector.references.push_back(faces[index].embedding);
  }
  if (debug_out) std::filesystem::create_directories(*debug_out);

  nlohmann::json results = nlohmann::json::array();
  int failed = 0;
  for (const auto& file : expand_inputs(args.positionals())) {
    nlohmann::json entry;
    entry["file"] = file.string();
    try {
      Image image = read_image(file);
      std::vector<Face> faces = select_faces(analyser.analyse(image.rgb), selector);
      entry["width"] = image.rgb.size(1);
      entry["height"] = image.rgb.size(0);
      entry["faces"] = nlohmann::json::array();
      for (const auto& f : faces) entry["faces"].push_back(face_json(f, with_embedding));
      if (debug_out) {
        std::filesystem::path out = std::filesystem::path(*debug_out) / (file.stem().string() + ".debug.png");
        std::error_code ec;
        if (std::filesystem::equivalent(out, file, ec))
          throw Error(ErrorKind::bad_input, out.string() + ": refusing to overwrite an input");
        write_image(out, draw_faces(image.rgb, faces));
        entry["debug_image"] = out.string();
      }
      if (!json) {
        std::cout << file.string() << ": " << faces.size() << " face(s)\n";
        for (size_t i = 0; i < faces.size(); ++i) {
          const Face& f = faces[i];
          std::cout << "  #" << i << std::fixed << std::setprecision(0) << "  box " << f.box.x << "," << f.box.y << " "
                    << f.box.width << "x" << f.box.height << std::setprecision(2) << "  score " << f.detector_score
                    << "  mesh " << f.landmark_score << std::setprecision(1) << "  roll " << f.roll;
          if (f.age) std::cout << "  age " << *f.age;
          if (f.gender != Gender::unknown) std::cout << "  " << to_string(f.gender);
          std::cout << "\n";
        }
      }
    } catch (const Error& e) {
      ++failed;
      entry["error"] = {{"kind", error_id(e.kind())}, {"message", e.what()}};
      std::cerr << "visage: " << file.string() << ": " << to_string(e.kind()) << ": " << e.what() << "\n";
    }
    results.push_back(std::move(entry));
  }
  if (json) std::cout << results.dump(2) << "\n";
  if (failed) std::cerr << "visage: " << failed << " of " << results.size() << " image(s) failed\n";
  return failed ? 1 : 0;
}

}  // namespace visage::cli
