// Small 2D geometry for face analysis: affine maps, similarity fits, boxes.
#pragma once

#include <span>
#include <vector>

#include "visage/face.hpp"

namespace visage::face {

Affine identity_affine();
Affine compose(const Affine& outer, const Affine& inner);  // outer(inner(p))
Affine invert(const Affine& m);
Point2 apply(const Affine& m, Point2 p);
// Maps a square crop of `size` pixels onto the image: the crop's centre goes
// to `centre`, its side covers `side` image pixels, rotated by `angle_rad`
// (the crop's x axis points along angle_rad in the image).
Affine crop_to_image(Point2 centre, float side, float angle_rad, int size);

// Least-squares similarity transform mapping src onto dst (Umeyama, no reflection).
Affine fit_similarity(std::span<const Point2> src, std::span<const Point2> dst);

float iou(const Box& a, const Box& b);
// Intersection over the smaller box's area: 1 when one box holds the other.
float overlap(const Box& a, const Box& b);
// Indices of the boxes kept by greedy non-maximum suppression, best score first.
std::vector<size_t> non_max_suppression(std::span<const Box> boxes, std::span<const float> scores, float iou_threshold);

// Convex hull of points, counter-clockwise in image coordinates.
std::vector<Point2> convex_hull(std::vector<Point2> points);

Box bounding_box(std::span<const Point2> points);

}  // namespace visage::face
