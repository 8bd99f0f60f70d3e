#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_conv_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
