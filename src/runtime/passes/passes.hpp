// Load-time graph passes. Each takes a topologically sorted graph and leaves it
// sorted; each preserves the graph's outputs exactly (up to floating-point
// rounding of folded arithmetic).
#pragma once

#include "runtime/graph.hpp"

namespace visage::rt {

// Evaluates on the CPU every node whose inputs are all constant and replaces
// it by an initializer. Also folds Shape/Size of inputs whose shape is static.
void fold_constants(Graph& graph);

// Folds BatchNormalization (inference form) into a preceding float32 Conv, and
// a Mul/Add/Sub by a per-channel constant into the Conv's weights and bias.
void fold_batch_norm(Graph& graph);

// Rewrites activations that converters spelled out in elementary operators
// (Max(Min(x, hi), lo) as Clip; relu(x) + a * (x - |x|) as PRelu) so that
// fuse_activations can fold them. Runs before fuse_residual_add.
void recognise_activations(Graph& graph);

// Folds an Add that is the only consumer of a Conv's output (no activation
// yet) into the Conv as a residual input: Conv attribute "residual" = 1, the
// other addend is input 3 (see graph.hpp). Runs before fuse_activations.
void fuse_residual_add(Graph& graph);

// Folds an activation that is the only consumer of a Conv/Gemm/MatMul output
// into that node's "activation" attribute (see graph.hpp).
void fuse_activations(Graph& graph);

// Removes Identity, Dropout (inference) and no-op Reshape/Cast nodes.
void remove_identities(Graph& graph);

}  // namespace visage::rt
