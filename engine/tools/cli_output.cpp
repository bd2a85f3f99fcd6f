#include "cli_output.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "peregrine/error.h"

namespace peregrine::cli {
namespace {

bool g_stdout_failure_reported = false;

[[noreturn]] void stdout_failed(int err) {
  g_stdout_failure_reported = true;
  throw Error(fmt::format("stdout: cannot write the output: {}",
                          err ? std::strerror(err) : "an earlier write failed"));
}

}  // namespace

void write_stdout(std::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) stdout_failed(errno);
}

void flush_stdout() {
  if (g_stdout_failure_reported) return;
  errno = 0;
  if (std::fflush(stdout) != 0) stdout_failed(errno);
  if (std::ferror(stdout)) stdout_failed(0);  // an unchecked write (fmt::print, help text) failed before
}

ReplacingFile::ReplacingFile(std::filesystem::path path) : final_path_(std::move(path)) {
  std::error_code ec;
  const auto status = std::filesystem::status(final_path_, ec);
  direct_ = !ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status);
  write_path_ = direct_ ? final_path_ : std::filesystem::path(final_path_.string() + ".tmp");
  file_ = std::fopen(write_path_.c_str(), "wb");
  if (!file_) fail(direct_ ? "cannot open for writing" : "cannot create " + write_path_.string(), errno);
}

ReplacingFile::~ReplacingFile() { abandon(); }

void ReplacingFile::write(std::span<const std::byte> bytes) {
  errno = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) fail("write failed", errno);
}

void ReplacingFile::commit() {
  errno = 0;
  if (std::fflush(file_) != 0) fail("write failed", errno);
  // On disk before it takes the final name, so a crash cannot leave a short file there either.
  if (!direct_ && ::fsync(::fileno(file_)) != 0) fail("write failed", errno);
  std::FILE* file = file_;
  file_ = nullptr;
  if (std::fclose(file) != 0) fail("write failed", errno);
  if (!direct_) {
    std::error_code ec;
    std::filesystem::rename(write_path_, final_path_, ec);
    if (ec) fail("cannot rename " + write_path_.string() + " to it", ec.value());
  }
  write_path_.clear();
}

void ReplacingFile::fail(std::string_view what, int err) {
  abandon();
  throw Error(fmt::format("{}: {}: {}", final_path_.string(), what, err ? std::strerror(err) : "unknown error"));
}

void ReplacingFile::abandon() noexcept {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  if (!direct_ && !write_path_.empty()) {
    std::error_code ignored;
    std::filesystem::remove(write_path_, ignored);
  }
  write_path_.clear();
}

}  // namespace peregrine::cli
