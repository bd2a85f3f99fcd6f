// The engine's exception type. Every message says which file / key / tensor and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace peregrine {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace peregrine
