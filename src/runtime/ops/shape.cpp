#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_shape_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
