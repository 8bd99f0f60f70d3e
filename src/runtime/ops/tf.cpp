#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_tf_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
