#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_elementwise_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
