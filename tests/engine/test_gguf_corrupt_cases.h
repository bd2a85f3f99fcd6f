// The generator of tests/data/gguf-corrupt/: a small valid GGUF file built byte by byte, and
// deterministic variants of it that each break exactly one rule of the format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "peregrine/gguf.h"

namespace peregrine::test {

struct CorruptCase {
  std::string file_name;                 // under tests/data/gguf-corrupt/
  std::optional<GgufErrorCode> expected; // nullopt: the file is valid (the base the others derive from)
  std::string description;               // for the README table
  std::vector<uint8_t> bytes;
};

// All cases, valid base first. `fixture` is tests/data/qwen35-tiny/tiny-f32.gguf's bytes (one
// case truncates it).
std::vector<CorruptCase> make_corrupt_cases(const std::vector<uint8_t>& fixture);

// The README.md of the folder, a table of every case.
std::string corrupt_cases_readme(const std::vector<CorruptCase>& cases);

}  // namespace peregrine::test
