// The 68 iBUG 300-W points read off the 468-point mesh.
//
// Each iBUG point is the mesh vertex that lies closest to it on average: the
// table was fitted with `visage bench landmarks --fit` on the 18 faces of
// dlib's examples/faces/training_with_face_landmarks.xml (attention mesh) and
// is judged on the 25 faces of the testing file (bench/RESULTS.md).
#include "face/mesh.hpp"

namespace visage::face {

namespace {

constexpr int ibug_vertex[68] = {
    34,  227, 177, 215, 138, 136, 149, 148, 152, 377, 378, 379, 397, 288, 361, 366, 356,  // jaw 0..16
    70,  63,  105, 66,  107,                                                              // left brow 17..21
    336, 296, 334, 293, 300,                                                              // right brow 22..26
    168, 197, 195, 4,                                                                     // nose bridge 27..30
    75,  97,  164, 326, 460,                                                              // nostrils 31..35
    7,   160, 158, 155, 153, 144,                                                         // left eye 36..41
    381, 385, 387, 249, 373, 380,                                                         // right eye 42..47
    61,  74,  72,  11,  302, 272, 291, 405, 314, 17,  84,  181,                           // outer lips 48..59
    77,  82,  13,  312, 307, 316, 15,  86,                                                // inner lips 60..67
};

}  // namespace

std::vector<Point2> mesh_landmarks_68(const std::vector<Point3>& mesh) {
  std::vector<Point2> out;
  if (mesh.size() < 468) return out;
  out.reserve(68);
  for (int v : ibug_vertex) out.push_back({mesh[v].x, mesh[v].y});
  return out;
}

}  // namespace visage::face
