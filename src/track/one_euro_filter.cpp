// The One-Euro filter and the landmark jitter metric.
#include <cmath>
#include <numbers>
#include <string>

#include "visage/error.hpp"
#include "visage/track.hpp"

namespace visage {

namespace {

// Smoothing factor of an exponential filter with cut-off `cutoff` Hz sampled
// every `period` seconds: alpha = 1 / (1 + tau / period), tau = 1 / (2 pi fc).
float smoothing_factor(double cutoff, double period) {
  double tau = 1.0 / (2 * std::numbers::pi * cutoff);
  return static_cast<float>(1.0 / (1.0 + tau / period));
}

}  // namespace

OneEuroFilter::OneEuroFilter(float min_cutoff, float beta, float derivative_cutoff)
    : min_cutoff_(min_cutoff), beta_(beta), derivative_cutoff_(derivative_cutoff) {
  if (!(min_cutoff > 0) || !(derivative_cutoff > 0) || !(beta >= 0))
    throw Error(ErrorKind::bad_input, "One-Euro filter: min_cutoff (" + std::to_string(min_cutoff) +
                                          ") and derivative_cutoff (" + std::to_string(derivative_cutoff) +
                                          ") must be positive and beta (" + std::to_string(beta) + ") not negative");
}

float OneEuroFilter::operator()(float x, double time) { return (*this)(x, time, 1.f); }

float OneEuroFilter::operator()(float x, double time, float scale) {
  if (!started_) {
    started_ = true;
    x_ = x, dx_ = 0, time_ = time;
    return x;
  }
  double period = time - time_;
  // A repeated (or backwards) time stamp carries no speed information: keep
  // the current estimate rather than divide by zero.
  if (!(period > 0)) return x_;
  time_ = time;
  float dx = static_cast<float>((x - x_) / period);
  dx_ += smoothing_factor(derivative_cutoff_, period) * (dx - dx_);
  // The speed is measured in units of `scale` per second, so the same
  // parameters suit a face of 50 or 500 pixels.
  float speed = std::abs(dx_) / (scale > 0 ? scale : 1.f);
  x_ += smoothing_factor(min_cutoff_ + beta_ * speed, period) * (x - x_);
  return x_;
}

void OneEuroFilter::reset() {
  started_ = false;
  x_ = dx_ = 0;
  time_ = 0;
}

double landmark_jitter(const std::vector<std::vector<Point2>>& per_frame, const std::vector<float>& eye_distance) {
  if (per_frame.size() < 3)
    throw Error(ErrorKind::bad_input,
                "landmark_jitter needs at least 3 frames, got " + std::to_string(per_frame.size()));
  if (eye_distance.size() != per_frame.size())
    throw Error(ErrorKind::bad_input, "landmark_jitter: " + std::to_string(eye_distance.size()) +
                                          " eye distances for " + std::to_string(per_frame.size()) + " frames");
  const size_t points = per_frame[0].size();
  for (size_t t = 0; t < per_frame.size(); ++t) {
    if (per_frame[t].size() != points)
      throw Error(ErrorKind::bad_input, "landmark_jitter: frame " + std::to_string(t) + " has " +
                                            std::to_string(per_frame[t].size()) + " points, frame 0 has " +
                                            std::to_string(points));
    if (!(eye_distance[t] > 0))
      throw Error(ErrorKind::bad_input,
                  "landmark_jitter: eye distance of frame " + std::to_string(t) + " is not positive");
  }
  if (points == 0) throw Error(ErrorKind::bad_input, "landmark_jitter: frames have no points");
  double total = 0;
  for (size_t t = 1; t + 1 < per_frame.size(); ++t) {
    double frame_sum = 0;
    for (size_t i = 0; i < points; ++i) {
      const Point2 a = per_frame[t - 1][i], b = per_frame[t][i], c = per_frame[t + 1][i];
      frame_sum += std::hypot(double(c.x) - 2.0 * b.x + a.x, double(c.y) - 2.0 * b.y + a.y);
    }
    total += frame_sum / points / eye_distance[t];
  }
  return total / static_cast<double>(per_frame.size() - 2);
}

}  // namespace visage
