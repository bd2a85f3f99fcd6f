// Where the commands' results go, and how a failure to write them becomes the command's failure
// (a full disk, a closed pipe): stdout, and files that replace their final name only when whole.
#pragma once

#include <cstdio>
#include <filesystem>
#include <span>
#include <string_view>

namespace peregrine::cli {

// Writes `text` to stdout; throws Error("stdout: cannot write the output: <reason>") when it fails.
void write_stdout(std::string_view text);

// Flushes stdout, throwing like write_stdout. main() calls it after every command, so output still
// buffered when a command returns cannot be lost silently. A failure already thrown by
// write_stdout is not reported a second time.
void flush_stdout();

// A file written under "<path>.tmp" and renamed to `path` by commit(). Destroyed without a
// commit (an error on the way) it deletes the temporary file: a failed write never leaves a partial
// file under the final name, and an older file there stays as it was. An existing path that is
// not a regular file (/dev/null, a FIFO) is written directly, since renaming over it would
// replace the device. Failures throw Error naming `path` and the system's reason.
class ReplacingFile {
 public:
  explicit ReplacingFile(std::filesystem::path path);
  ~ReplacingFile();
  ReplacingFile(const ReplacingFile&) = delete;
  ReplacingFile& operator=(const ReplacingFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void commit();

 private:
  [[noreturn]] void fail(std::string_view what, int err);
  void abandon() noexcept;

  std::filesystem::path final_path_;
  std::filesystem::path write_path_;
  bool direct_ = false;
  std::FILE* file_ = nullptr;
};

}  // namespace peregrine::cli
