// `visage bench landmarks`: 68-point accuracy against dlib-style XML labels.
//
// NME = mean point error / outer-eye-corner distance (points 36 and 45), the
// 300-W convention. With --fit it instead prints, for each of the 68 points,
// the mesh vertex closest to the labels on average: how the mesh-to-68 table
// in src/face/landmarks_68.cpp was made (fitted on dlib's training file,
// judged on its testing file).
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <regex>
#include <sstream>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::cli {

namespace {

struct LabelledFace {
  Box box;
  std::vector<Point2> points;  // 68
};

struct LabelledImage {
  std::string file;
  std::vector<LabelledFace> faces;
};

std::vector<LabelledImage> read_dlib_xml(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::io, path.string() + ": cannot open");
  std::vector<LabelledImage> images;
  const std::regex image_re(R"(<image file='([^']+)')"),
      box_re(R"(<box top='(-?\d+)' left='(-?\d+)' width='(\d+)' height='(\d+)')"),
      part_re(R"(<part name='(\d+)' x='(-?\d+)' y='(-?\d+)')");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, image_re)) {
      images.push_back({m[1].str(), {}});
    } else if (std::regex_search(line, m, box_re) && !images.empty()) {
      LabelledFace f;
      f.box = {std::stof(m[2]), std::stof(m[1]), std::stof(m[3]), std::stof(m[4])};
      f.points.resize(68);
      images.back().faces.push_back(f);
    } else if (std::regex_search(line, m, part_re) && !images.empty() && !images.back().faces.empty()) {
      int k = std::stoi(m[1]);
      // dlib's pixel coordinates index pixel centres; ours put centres at +0.5.
      if (k >= 0 && k < 68) images.back().faces.back().points[k] = {std::stof(m[2]) + 0.5f, std::stof(m[3]) + 0.5f};
    }
  }
  return images;
}

const Face* match(const std::vector<Face>& faces, const Box& box) {
  const Face* best = nullptr;
  float best_d = box.width;  // the centre must fall within a box width
  for (const auto& f : faces) {
    Point2 a = f.box.centre(), b = box.centre();
    float d = std::hypot(a.x - b.x, a.y - b.y);
    if (d < best_d) best_d = d, best = &f;
  }
  return best;
}

}  // namespace

const char* kBenchLandmarksUsage =
    "usage: visage bench landmarks LABELS.xml [--fit] [--json FILE] [--landmarker NAME] [--detector NAME]\n"
    "  LABELS.xml: dlib imglab XML with 68 <part>s per <box> (e.g. dlib's examples/faces)\n";

int bench_landmarks(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchLandmarksUsage;
    return 0;
  }
  bool fit = args.flag("--fit");
  auto json_path = args.value("--json");
  FaceAnalyserOptions options;
  options.embeddings = false;
  options.attributes = false;
  if (auto v = args.value("--landmarker")) options.landmarker = parse_face_landmarker(*v);
  if (auto v = args.value("--detector")) options.detector = parse_face_detector(*v);
  args.finish();
  if (args.positionals().size() != 1) {
    std::cerr << kBenchLandmarksUsage;
    return 2;
  }
  std::filesystem::path xml = args.positionals()[0];
  FaceAnalyser analyser(options);
  auto images = read_dlib_xml(xml);
  int labelled = 0, found = 0;
  double nme_sum = 0;
  std::vector<double> cost;  // [68][468] mean normalised distance, for --fit
  if (fit) cost.assign(68 * 468, 0.0);
  for (const auto& image : images) {
    Image photo = read_image(xml.parent_path() / image.file);
    std::vector<Face> faces = analyser.analyse(photo.rgb);
    for (const auto& label : image.faces) {
      ++labelled;
      const Face* face = match(faces, label.box);
      if (!face || face->mesh.size() < 468) continue;
      ++found;
      const auto& p = label.points;
      double norm = std::hypot(p[36].x - p[45].x, p[36].y - p[45].y);
      if (fit) {
        for (int k = 0; k < 68; ++k)
          for (int v = 0; v < 468; ++v)
            cost[k * 468 + v] += std::hypot(face->mesh[v].x - p[k].x, face->mesh[v].y - p[k].y) / norm;
        continue;
      }
      double err = 0;
      for (int k = 0; k < 68; ++k)
        err += std::hypot(face->landmarks_68[k].x - p[k].x, face->landmarks_68[k].y - p[k].y);
      nme_sum += err / 68 / norm;
    }
  }
  if (fit) {
    std::cout << "// mesh vertex per iBUG point, fitted on " << found << " faces of " << xml.filename().string()
              << "\n";
    for (int k = 0; k < 68; ++k) {
      int best = 0;
      for (int v = 1; v < 468; ++v)
        if (cost[k * 468 + v] < cost[k * 468 + best]) best = v;
      std::cout << best << (k % 17 == 16 ? ",\n" : ", ");
    }
    std::cout << "\n";
    return 0;
  }
  double nme = found ? nme_sum / found : NAN;
  std::cout << std::fixed << std::setprecision(4) << xml.filename().string() << ": " << found << " of " << labelled
            << " labelled faces found, 68-point NME (outer-eye-corner normalised) " << nme << "\n";
  if (json_path) {
    nlohmann::json j = {{"labels", xml.string()}, {"faces_labelled", labelled}, {"faces_found", found}, {"nme", nme}};
    std::string text = j.dump(2) + "\n";
    write_file_atomically(*json_path,
                          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  return 0;
}

}  // namespace visage::cli
