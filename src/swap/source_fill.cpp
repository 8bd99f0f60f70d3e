#include "swap/source_fill.hpp"

#include <ATen/ATen.h>

#include <vector>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"

namespace visage::swap {

namespace {

// Several [H, W] or [H, W, C] planes blurred at one sigma in one pass (one
// launch sequence on a device instead of one per plane): `input` and
// `output` are [C, H, W], the planes' channels in order.
struct Blurred {
  at::Tensor input, output;
  at::Tensor plane(int64_t c) const { return output.select(0, c); }
};
Blurred blur_together(const std::vector<at::Tensor>& planes, float sigma) {
  std::vector<at::Tensor> chw;
  for (const at::Tensor& p : planes) chw.push_back(p.dim() == 2 ? p.unsqueeze(0) : p.permute({2, 0, 1}));
  at::Tensor in = at::cat(chw, 0).unsqueeze(0).contiguous();
  return {in.squeeze(0), detail::gaussian_blur_nchw(in, sigma).squeeze(0)};
}

// Low frequencies of an image seen only where its weight is high
// (normalised convolution), from channels c..c+3 of `b` (rgb * weight,
// weight). Far from any weight the estimate tends to the weighted mean over
// the whole image (a prior as if seen on 2% of the window). [H, W, 3].
at::Tensor weighted_lowpass(const Blurred& b, int64_t c) {
  at::Tensor sums = b.input.narrow(0, c, 4).sum({1, 2});
  at::Tensor mean = (sums.narrow(0, 0, 3) / sums.narrow(0, 3, 1).clamp_min(1e-3f)).view({3, 1, 1});
  constexpr float prior = 0.02f;
  at::Tensor local = b.output.narrow(0, c, 4);
  at::Tensor est = (local.narrow(0, 0, 3) + mean * prior) / (local.narrow(0, 3, 1) + prior);
  return est.permute({1, 2, 0});
}

// Channels [C, H, W] averaged along the rows (two boxes 2 r + 1 wide: about
// a Gaussian of 0.8 r), then over 2 rv + 1 rows (two boxes) when rv > 0.
at::Tensor along_rows(const at::Tensor& chw, int64_t r, int64_t rv = 0) {
  at::Tensor x = chw.unsqueeze(0);
  for (int pass = 0; pass < 2; ++pass) x = at::avg_pool2d(x, {1, 2 * r + 1}, {1, 1}, {0, r}, false, false);
  for (int pass = 0; pass < 2 && rv > 0; ++pass) x = at::avg_pool2d(x, {2 * rv + 1, 1}, {1, 1}, {rv, 0}, false, false);
  return x.squeeze(0);
}

// A [H, W] plane's maximum over `d` columns either side.
at::Tensor widened_along_rows(const at::Tensor& plane, int64_t d) {
  const int64_t h = plane.size(0), w = plane.size(1);
  return at::max_pool2d(plane.view({1, 1, h, w}), {1, 2 * d + 1}, {1, 1}, {0, d}).view({h, w});
}

// Where the two sides meet along the face's midline on a turned source (the
// switch of `facing_lean`, see mix_sides) both sides are in the source's own
// penumbra: the direct side darkens as the nose ridge (or the philtrum, the
// chin) turns away from the light, and its mirror partner is the same
// stretch of the far side. A three-quarter source lit from its near side
// gave a frontal target a dark line down the nose ridge, 12-16 pixels wide
// at a 200-pixel face and half as light as the flanks. There the colour is
// lifted (never darkened) to what lies left and right of the band: each
// channel's horizontal low-pass outside the band over the pixel's own
// (3x3) one. Across the face, not along it, because the features that
// cross the midline (lips, the chin's crease, the nose's tip) are
// horizontal: along them the band's neighbours are the same feature.
// The penumbra reaches past the band where the nose turns away from the
// light over a wider stretch (down the ridge to the tip, the philtrum in
// the nose's shadow): measured on stock-emotions-a-2 -> grace_hopper, the
// band's soft edges lay on its darkest columns and the low-pass outside the
// band read them too, which left two faint dark lines along the band's
// edges (25 levels below the flanks down the ridge) and a brown philtrum
// (37 below). So the lift reaches ~2% of the face further each side, and
// its level goes from the low-pass outside the band (near) towards the one
// outside the band widened by ~3% of the face (far: beyond the penumbra)
// where that is lighter (not where it reads darker features, the inner
// corners of the eyes beside the bridge) and the pixel is a valley below the
// near level. A pixel is lifted at most to that level: lighter than its 3x3
// mean (a bump between two dark columns) it overshot to a light line.
at::Tensor lift_seam_valley(const at::Tensor& rgb, const at::Tensor& weight, const at::Tensor& facing_lean,
                            const at::Tensor& apart, float face_size) {
  const int64_t h = rgb.size(0), w = rgb.size(1);
  // The band: within ~4% of the face of both a clearly direct (lean > 0.7)
  // and a clearly mirrored (lean < 0.3) pixel, and near the midline (the
  // two source points less than ~10% of the face apart): not round a far
  // eye read from the direct side amid mirrored skin.
  const int64_t reach = std::max<int64_t>(1, std::lround(0.04f * face_size));
  at::Tensor ends = at::stack({facing_lean, detail::one_minus(facing_lean)}, 0).sub_(0.7f).div_(0.2f).clamp_(0.f, 1.f);
  ends = at::max_pool2d(ends.unsqueeze(0), {2 * reach + 1, 2 * reach + 1}, {1, 1}, {reach, reach}).squeeze(0);
  const int64_t soft = std::max<int64_t>(1, std::lround(0.015f * face_size));
  at::Tensor band =
      at::avg_pool2d((ends.select(0, 0) * ends.select(0, 1) * ((0.12f - apart) * (1.f / 0.06f)).clamp(0.f, 1.f))
                         .view({1, 1, h, w}),
                     {2 * soft + 1, 2 * soft + 1}, {1, 1}, {soft, soft}, false, false)
          .view({h, w});
  // All low-passes over the usable pixels only (holes hold no colour).
  const int64_t beyond = std::max<int64_t>(1, std::lround(0.03f * face_size));
  const at::Tensor chw = rgb.permute({2, 0, 1});
  at::Tensor near_out = detail::one_minus(band) * weight;
  at::Tensor far_out = detail::one_minus(widened_along_rows(band, beyond)) * weight;
  const int64_t r = std::max<int64_t>(1, std::lround(0.04f * face_size));  // about a Gaussian of 0.033 of the face
  at::Tensor across =
      along_rows(at::cat({chw * near_out, near_out.unsqueeze(0), chw * far_out, far_out.unsqueeze(0)}, 0), r);
  at::Tensor near_level = across.narrow(0, 0, 3) / across.narrow(0, 3, 1).clamp_min(1e-3f);
  at::Tensor far_level = across.narrow(0, 4, 3) / across.narrow(0, 7, 1).clamp_min(1e-3f);
  at::Tensor own = at::cat({chw * weight, weight.unsqueeze(0)}, 0).unsqueeze(0);
  own = at::avg_pool2d(own, {3, 3}, {1, 1}, {1, 1}, false, false).squeeze(0);
  at::Tensor here = (own.narrow(0, 0, 3) / own.narrow(0, 3, 1).clamp_min(1e-3f)).clamp_min(1.f);
  // The far level where it is lighter, as far as the pixel is a valley
  // below the near one (fully from 25% darker): a feature that crosses the
  // midline as dark as beside the band (the lips, whose outline curves away
  // within the far reach) keeps the near level.
  at::Tensor valley = (1.f - here.sum(0) / near_level.sum(0).clamp_min(1.f)).div_(0.25f).clamp_(0.f, 1.f);
  at::Tensor level = near_level + (far_level - near_level).clamp_min(0.f) * valley.unsqueeze(0);
  at::Tensor gain = (level / here).clamp(1.f, 2.5f);
  at::Tensor lifted = at::minimum(chw * gain, at::maximum(chw, level));
  const at::Tensor reach_band = widened_along_rows(band, std::max<int64_t>(1, std::lround(0.02f * face_size)));
  return at::lerp(chw, lifted, reach_band.unsqueeze(0)).permute({1, 2, 0});
}

}  // namespace

at::Tensor with_inner_shadows(const at::Tensor& usable, const at::Tensor& hull, float face_size) {
  at::Tensor unusable = (detail::one_minus(usable) * hull).contiguous();
  // Seeds: the band along the outline (~4% of the face) and everything outside.
  at::Tensor outside = (feather_mask(hull, 0.08f * face_size) < 0.5f).to(at::kFloat).contiguous();
  at::Tensor reaches_in = connected_to(unusable, outside, 0.5f);
  at::Tensor inner = (unusable > 0.5f).to(at::kFloat) * detail::one_minus(reaches_in);
  // The skin model's soft rim round such a spot is the spot's too.
  at::Tensor grown = at::maximum(
      inner, at::clamp_max(blur_mask(inner, 1.5f) * 2.f, 1.f) * detail::one_minus(blur_mask(reaches_in, 1.f)));
  return at::maximum(usable, grown * hull).contiguous();
}

MixedTexture mix_sides(const SourceSide& direct, const SourceSide& mirrored, const at::Tensor& covered,
                       const at::Tensor& apart, float face_size) {
  // The direct point unless its mirror partner faced the camera clearly more
  // squarely (a three-quarter source's far side) and is usable ...
  const at::Tensor facing_lean = ((direct.facing - mirrored.facing) / 0.3f + 1.f).clamp(0.f, 1.f);
  at::Tensor lean = facing_lean;
  // ... and giving way gradually towards the edge of a wider unusable area
  // of the direct side (its share of the covered pixels around: 0.5 at a
  // straight edge, ~1 near a small hole).
  const float band = 0.045f * face_size;
  const Blurred near = blur_together({direct.usable * covered, covered}, band);
  at::Tensor share = near.plane(0) / near.plane(1).clamp_min(1e-3f);
  lean = lean * detail::smoothstep_unit(((share - 0.5f) / 0.45f).clamp(0.f, 1.f));
  at::Tensor w_direct = direct.usable * (lean + detail::one_minus(lean) * detail::one_minus(mirrored.usable));
  at::Tensor w_mirror = mirrored.usable * detail::one_minus(w_direct);
  at::Tensor w_sum = w_direct + w_mirror;

  // One smooth shading for both sides (see the header).
  const float sigma = 0.08f * face_size;
  const Blurred sides = blur_together({direct.rgb * direct.usable.unsqueeze(2), direct.usable,
                                       mirrored.rgb * mirrored.usable.unsqueeze(2), mirrored.usable},
                                      sigma);
  at::Tensor log_direct = weighted_lowpass(sides, 0).clamp_min(1.f).log();
  at::Tensor log_mirror = weighted_lowpass(sides, 4).clamp_min(1.f).log();
  const Blurred shares = blur_together({w_mirror, w_sum}, 0.1f * face_size);
  at::Tensor mirror_share = (shares.plane(0) / shares.plane(1).clamp_min(1e-3f)).clamp(0.f, 1.f).unsqueeze(2);
  at::Tensor log_shading = log_direct + (log_mirror - log_direct) * mirror_share;
  at::Tensor direct_rgb = direct.rgb * (log_shading - log_direct).exp().clamp(0.5f, 2.f);
  at::Tensor mirror_rgb = mirrored.rgb * (log_shading - log_mirror).exp().clamp(0.5f, 2.f);
  at::Tensor rgb =
      (direct_rgb * w_direct.unsqueeze(2) + mirror_rgb * w_mirror.unsqueeze(2)) / w_sum.clamp_min(1e-3f).unsqueeze(2);
  at::Tensor weight = w_sum.clamp(0.f, 1.f) * covered;

  // Narrow holes: filled from the pixels around them, where those hold most
  // of the neighbourhood (a wide unusable area is extended by ~2% of the
  // face at most). A blur over 3% of the face left the hole under a turned
  // source's lower lip (its shadow joins the shaded far side: ~9% of the
  // face across) holding the target's own chin, a light patch.
  const Blurred holes = blur_together({rgb * weight.unsqueeze(2), weight, covered}, 0.05f * face_size);
  // The colour mostly from the same rows (over ~5% of the face either side,
  // ~1.5% up and down), the round blur's only where a row has nothing usable
  // near: such holes lie on the midline between the two sides, and the
  // features that cross it are horizontal. Filled from all round, the hole
  // under a turned source's lower lip took the lip's colour (a pinkish
  // diamond: +5/+5/+10 RGB over the lip's shadow beside it; now -1/-2/0).
  at::Tensor around;
  {
    const int64_t r = std::max<int64_t>(1, std::lround(0.06f * face_size));
    const int64_t rv = std::max<int64_t>(1, std::lround(0.02f * face_size));
    constexpr float round_share = 0.05f;
    at::Tensor sums = along_rows(holes.input.narrow(0, 0, 4), r, rv).add_(holes.output.narrow(0, 0, 4), round_share);
    around = (sums.narrow(0, 0, 3) / sums.narrow(0, 3, 1).clamp_min(1e-3f)).permute({1, 2, 0});
  }
  at::Tensor support = holes.plane(3) / holes.plane(4).clamp_min(1e-3f);
  at::Tensor fill =
      detail::one_minus(weight) * covered * detail::smoothstep_unit(((support - 0.35f) / 0.3f).clamp(0.f, 1.f));
  rgb = (rgb * weight.unsqueeze(2) + around * fill.unsqueeze(2)) / (weight + fill).clamp_min(1e-3f).unsqueeze(2);
  weight = (weight + fill).clamp(0.f, 1.f);
  if (apart.defined()) rgb = lift_seam_valley(rgb, weight, facing_lean, apart, face_size);
  return {rgb.clamp(0.f, 255.f).contiguous(), weight.contiguous()};
}

at::Tensor source_share(const at::Tensor& weight, const at::Tensor& fade) {
  return weight * (fade * 3.f).clamp_max(1.f);
}

at::Tensor unusable_fade(const at::Tensor& covered, const at::Tensor& weight, float face_size) {
  // Partly usable pixels count: the rows of a forehead just under a fringe
  // are a mix of the source's shadowed skin and the target's pixels.
  at::Tensor unusable = (covered * ((0.9f - weight) / 0.4f).clamp(0.f, 1.f)).contiguous();
  // Wide areas only: what stays above half after a blur over ~3% of the face.
  at::Tensor wide = ((blur_mask(unusable, 0.03f * face_size) - 0.35f) / 0.3f).clamp(0.f, 1.f);
  // At a straight edge of `wide` the blur below is 0.196 at 6% of the face
  // inside the usable side and 0.0023 at 20%. The margin: the usable rows
  // right under a fringe or a hand are in its shadow, a darker band. The
  // width: about the forehead's own fade (forehead_ramp); a narrower one
  // read as an edge.
  at::Tensor near = blur_mask(wide, 0.07f * face_size);
  return detail::smoothstep_unit(((0.196f - near) / 0.194f).clamp(0.f, 1.f));
}

}  // namespace visage::swap
