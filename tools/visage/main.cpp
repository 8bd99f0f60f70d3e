#include <iostream>

#include "visage/runtime.hpp"

int main(int argc, char** argv) {
  std::cerr << "usage: visage <command> ...\n";
  return 2;
}
