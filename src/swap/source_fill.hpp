// How the swapper fills the target's face from the source texture where the
// source is hard to use: its own shadows, its far side (a three-quarter view,
// read from the mirrored side) and small holes; and how the blend mask gives
// way to the target before a wide unusable area (hair over a forehead).
// Conventions as in compose.hpp: images float [H, W, 3] 0..255, masks float
// [H, W] 0..1, everything on one device.
#pragma once

#include <ATen/core/Tensor.h>

namespace visage::swap {

// `usable` (1 = the source's own skin) with the unusable spots that do not
// reach the face's outline (`hull`) made usable again: occluders (hair,
// hands, a microphone, glasses) come into a face from outside it, while
// dark spots inside it (a nose's or a lip's shadow, lashes and the lid's
// crease round an eye, a mole) are the face's own. Without this those spots
// showed the target's pixels (red rims of grace_hopper's glasses round the
// eyes of a three-quarter source, a blotch under its lower lip).
at::Tensor with_inner_shadows(const at::Tensor& usable, const at::Tensor& hull, float face_size);

// One side of the source as read at every pixel of the target face.
struct SourceSide {
  at::Tensor rgb;     // [H, W, 3]
  at::Tensor usable;  // [H, W]: 0..1
  at::Tensor facing;  // [H, W]: how squarely the texel faced the camera (cosine)
};

// The source texture at every pixel of the target face: the direct point or
// its mirror partner, and how much of it holds the source (0 = nothing
// usable: the target's own pixels there).
struct MixedTexture {
  at::Tensor rgb;     // [H, W, 3]
  at::Tensor weight;  // [H, W]
};

// Direct and mirrored side mixed without a seam:
//  - the mirrored side takes over where the direct one faced the camera
//    clearly less squarely, and gradually (over ~7% of the face) towards the
//    edge of a wider unusable area of the direct side (a three-quarter
//    source's shaded far cheek), not in a step;
//  - both are relit to one smooth shading: each side's low frequencies
//    (their own usable pixels only) are carried to a field that goes from
//    the direct side's to the mirrored side's as the mirrored share of the
//    mix does, smoothed over ~10% of the face. A three-quarter source is lit
//    on the side it turns to; relighting only the mirrored side to the
//    direct one's (what was done before) left a light/dark step where the
//    share changed;
//  - holes up to ~9% of the face across that neither side covers (the
//    nose's midline between two shaded flanks, the shadow under a turned
//    source's lower lip) are filled from around them, mostly from their own
//    rows (the features crossing the midline are horizontal);
//  - where the sides meet along the midline because the mirrored side faced
//    the camera more squarely, the band is lifted to the colour left and
//    right of it, beyond the penumbra: there both sides are in the source's
//    penumbra (a dark line down the nose ridge of a three-quarter source, a
//    brown philtrum in the nose's shadow), which the smooth shading above is
//    too wide to see.
// `covered` is 1 where the target mesh covers the pixel; `apart` [H, W] is
// the distance between the direct and the mirrored source point in face
// sizes (0 on the face's midline); undefined, no lifting (a frontal source:
// the caller saves the work).
MixedTexture mix_sides(const SourceSide& direct, const SourceSide& mirrored, const at::Tensor& covered,
                       const at::Tensor& apart, float face_size);

// Factor for the blend mask near wide areas where the layer holds no source
// (`weight` of mix_sides below 1 inside `covered`: hair cut off a forehead, a
// hand, a far side without a mirror partner; partly usable pixels count):
// 0 from ~6% of the face before such an area's edge, rising to 1 at ~20%.
// The usable rows right under a fringe are in its shadow, and the layer
// steps to the target's pixels right after them: a mask that ended at the
// edge itself (over ~4% of the face) left a thin light line there. Small
// holes (a nostril) are left to the blend.
at::Tensor unusable_fade(const at::Tensor& covered, const at::Tensor& weight, float face_size);

// How much of the layer is the source's and counts in the colour steps and
// the blend: mix_sides' `weight`, given way to the target on the first third
// of unusable_fade's rise (`fade`). Those rows are the source's last before
// a fringe or a hand, in its shadow (half as light as the forehead below on
// astronaut.png): measured as skin they pulled the edge matching's
// correction up by ~25 levels just below them, and kept in the layer where
// the blend mask is 0 the multi-band blend's coarse levels still carried
// their dark band's light side lobes: both made the light line where the
// source's forehead ends.
at::Tensor source_share(const at::Tensor& weight, const at::Tensor& fade);

}  // namespace visage::swap
