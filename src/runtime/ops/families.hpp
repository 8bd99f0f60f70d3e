// One registration function per operator family; registry.cpp calls them all.
#pragma once

#include "runtime/kernel.hpp"

namespace visage::rt {

void register_activation_ops(OpTable& table);     // activation.cpp: Relu, Sigmoid, Softmax, ...
void register_conv_ops(OpTable& table);           // conv.cpp: Conv, ConvTranspose
void register_elementwise_ops(OpTable& table);    // elementwise.cpp: Add, Mul, Exp, Where, comparisons, ...
void register_matmul_ops(OpTable& table);         // matmul.cpp: MatMul, Gemm
void register_misc_ops(OpTable& table);           // misc.cpp: Cast, Constant, Identity, Dropout, TopK, ...
void register_normalization_ops(OpTable& table);  // normalization.cpp: BatchNormalization, LayerNormalization, ...
void register_pool_ops(OpTable& table);           // pool.cpp: MaxPool, AveragePool, Global*Pool
void register_reduce_ops(OpTable& table);         // reduce.cpp: ReduceMean, ReduceSum, ArgMax, ...
void register_resize_ops(OpTable& table);         // resize.cpp: Resize, Upsample, DepthToSpace, SpaceToDepth
void register_shape_ops(OpTable& table);          // shape.cpp: Reshape, Transpose, Concat, Slice, Gather, Pad, ...
void register_tf_ops(OpTable& table);             // tf.cpp: tf.* operators with no ONNX counterpart

}  // namespace visage::rt
