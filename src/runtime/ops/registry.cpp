#include "runtime/ops/families.hpp"

namespace visage::rt {

const OpTable& op_table() {
  static const OpTable table = [] {
    OpTable t;
    register_activation_ops(t);
    register_conv_ops(t);
    register_elementwise_ops(t);
    register_matmul_ops(t);
    register_misc_ops(t);
    register_normalization_ops(t);
    register_pool_ops(t);
    register_reduce_ops(t);
    register_resize_ops(t);
    register_shape_ops(t);
    register_tf_ops(t);
    return t;
  }();
  return table;
}

}  // namespace visage::rt
