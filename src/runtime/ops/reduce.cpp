#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_reduce_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
