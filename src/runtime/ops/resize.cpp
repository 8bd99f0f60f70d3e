#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_resize_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
