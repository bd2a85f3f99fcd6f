// peregrine::Engine — the engine thread. It alone owns the loaded model (weights, tokenizer,
// sequence state); clients talk to it through requests and events only.
//
//   Engine engine;                                   // events queued, read with poll()/wait()
//   engine.load_model("m.gguf", options);            // -> LoadProgress..., ModelLoaded | Error
//   auto id = engine.generate(request);              // -> TokenText..., StepStats..., Done | Error
//   engine.cancel(id);                               // within one decode step / one tensor
//
// Requests are processed one at a time, in submission order. Every request produces exactly one
// closing event: LoadModel -> ModelLoaded | Error (LoadProgress comes before it), Generate ->
// Done | Error (TokenText and StepStats come before it), Snapshot -> SnapshotTaken | Error, Restore -> Restored | Error,
// Unload -> Unloaded. Each event carries the id of its request.
// A failed request (bad file, prompt too long, ...) yields an Error event and leaves the engine
// usable. Cancel and cancel() act immediately from the calling thread (an atomic flag the
// generation loop checks every step and a load after every tensor it places); a cancelled
// generation ends with Done{Cancelled}, one that was still queued ends the same way without
// evaluating anything. A cancelled load, running or queued, ends with Error{cancelled = true}
// and leaves no model loaded (the previous one was freed before the load began).
//
// Event delivery: either a callback, invoked on the engine thread (keep it short; the Qt app
// forwards it with a queued signal), or — when no callback is given — a thread-safe queue that
// the client polls or waits on.
//
// The destructor cancels the running generation, drops queued requests and joins the thread.
//
// Snapshot / Restore: the sequence state (KV caches, delta-net states, last outputs) and the ids
// evaluated into it, as bytes (docs/engine.md has the format). A Generate after a Restore whose
// prompt strictly extends those ids evaluates only the rest, in this engine or in another one
// that loaded the same model file.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peregrine/chat_template.h"
#include "peregrine/generation_stats.h"
#include "peregrine/model.h"
#include "peregrine/mtp_limits.h"
#include "peregrine/sampler.h"

namespace peregrine {

using RequestId = uint64_t;  // 1, 2, 3, ... in submission order; 0 is never used

// What the engine knows about the loaded model.
struct ModelInfo {
  std::filesystem::path path;
  std::string name;           // general.name (may be empty)
  std::string architecture;   // "qwen35" / "qwen35moe"
  int64_t n_vocab = 0;        // logits per row (LM head rows, padded)
  int32_t vocab_size = 0;     // tokenizer vocabulary: ids that can be generated
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t trained_context_length = 0;  // from the file
  int64_t context_length = 0;          // what this load allocated (ModelOptions)
  int n_threads = 1;
  bool has_mtp = false;
  bool is_moe = false;
  uint64_t file_bytes = 0;
  ChatFormat chat_format = kDefaultChatFormat;
  double load_seconds = 0.0;
  // Backend::name() of the backend the model runs on: "cpu" or "cuda" (what Auto picked), or a
  // test backend's name.
  std::string backend;
  std::string backend_device;  // Backend::device_name(): the GPU's name for CUDA, else empty
};

// A conversation to render with the model's chat template. add_generation_prompt is always set
// (the engine is about to generate the assistant turn).
struct ChatPrompt {
  std::vector<ChatMessage> messages;
  ChatOptions options;
  std::optional<ChatFormat> format;  // default: detected from the GGUF's tokenizer.chat_template
};

// Token ids as they are; text, encoded with special tokens recognised; or a conversation.
using Prompt = std::variant<std::vector<int32_t>, std::string, ChatPrompt>;

// MTP speculative decoding for one Generate request (docs/mtp.md): off, a fixed draft length
// k in 1..kMaxMtpDraftLength, or auto (adaptive k from measured acceptance and step costs). Greedy
// output is identical to plain decoding whatever the setting; sampling keeps its distribution.
// A model without an MTP block decodes plainly whatever the setting (Done::stats.mtp says so).
struct MtpSetting {
  enum class Mode { Auto, Off, Fixed };
  Mode mode = Mode::Auto;
  int draft_length = 0;  // Fixed only: 1..kMaxMtpDraftLength

  static MtpSetting automatic() { return {}; }
  static MtpSetting off() { return {Mode::Off, 0}; }
  static MtpSetting fixed(int k) { return {Mode::Fixed, k}; }
  bool operator==(const MtpSetting&) const = default;
};
// "auto", "off", "1".."8" (what `--mtp` takes); nullopt for anything else.
std::optional<MtpSetting> parse_mtp_setting(std::string_view text);
std::string mtp_setting_name(const MtpSetting& setting);  // "auto", "off", "3"

namespace request {

struct LoadModel {
  std::filesystem::path path;
  ModelOptions options;
  // Makes the backend the model runs on instead of the one options.backend names (tests inject
  // instrumented backends this way). Called on the engine thread. Empty: options.backend.
  std::function<std::unique_ptr<Backend>()> backend_factory{};
  // LoadProgress at most this often (the first and the last always come); 0 = after every tensor.
  std::chrono::milliseconds progress_interval{100};
};

struct Generate {
  Prompt prompt;
  SamplingParams sampling;  // default greedy; see SamplingParams::thinking_general() etc.
  int32_t max_tokens = 512;
  std::vector<std::string> stop_strings;
  bool ignore_eos = false;  // keep going past end-of-generation tokens (benchmarks, tests)
  // When the prompt extends the ids already evaluated in the sequence (the previous prompt and
  // the tokens generated after it), evaluate only the new part.
  bool reuse_prefix = true;
  // StepStats at most this often; 0 = after every decode step.
  std::chrono::milliseconds stats_interval{250};
  MtpSetting mtp;  // default auto: drafts whenever the model has an MTP block
};

// Cancels one generation or model load (running or queued); target 0 = every generation and
// load submitted so far. Other requests are not cancellable and run as usual.
struct Cancel {
  RequestId target = 0;
};

struct Unload {};

// Serialises the sequence at its current position (the state after the last Generate: its
// prompt and every generated id except the last one sampled) -> event::SnapshotTaken.
struct Snapshot {};

// Loads bytes from event::SnapshotTaken (of this engine or another that loaded the same model)
// into the sequence -> event::Restored. Bytes of another model, a corrupt or truncated buffer,
// or positions beyond this load's context -> event::Error, and the sequence stays as it was.
struct Restore {
  std::vector<uint8_t> bytes;
};

}  // namespace request

using Request = std::variant<request::LoadModel, request::Generate, request::Cancel, request::Unload,
                             request::Snapshot, request::Restore>;

namespace event {

struct ModelLoaded {
  ModelInfo info;
};

struct Unloaded {};

// How far a LoadModel has got placing the weights in backend memory: done_bytes rises from 0 to
// total_bytes (the last LoadProgress of a load that succeeds has done_bytes == total_bytes). A
// host backend reads the weights in place, so its load reports only the two ends.
struct LoadProgress {
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};

// Newly complete text and the ids sampled since the previous TokenText. Text never ends inside
// a UTF-8 character; text that may be the start of a stop string is held back, so a TokenText
// can carry ids and no text, or text of earlier ids.
//
// For a ChatPrompt the engine, which renders the chat template, splits the model's think block
// off: `thinking` is the text inside <think>…</think> (tags and the newlines right after a tag
// removed), `text` the visible answer. One event carries thinking or answer text, never both;
// events come in stream order. For text and token-id prompts everything is `text`.
struct TokenText {
  std::string text;
  std::vector<int32_t> ids;
  std::string thinking;
};

// The statistics so far (stop_reason empty), at most every Generate::stats_interval.
struct StepStats {
  GenerationStats stats;
};

// The closing event of a Generate: the final statistics (stop_reason set).
struct Done {
  GenerationStats stats;
};

struct Error {
  std::string message;
  bool cancelled = false;  // a LoadModel stopped by cancel (not a failure): no model is loaded
};

struct SnapshotTaken {
  std::vector<uint8_t> bytes;      // what request::Restore takes
  int64_t n_past = 0;              // positions (= token ids) in the snapshot
  uint64_t model_fingerprint = 0;  // Model::fingerprint() of the model it was taken with
};

struct Restored {
  int64_t n_past = 0;  // the sequence's position now
};

}  // namespace event

struct Event {
  RequestId request = 0;
  std::variant<event::ModelLoaded, event::Unloaded, event::TokenText, event::StepStats, event::Done, event::Error,
               event::SnapshotTaken, event::Restored, event::LoadProgress>
      payload;

  template <class T>
  const T* get_if() const { return std::get_if<T>(&payload); }
  template <class T>
  bool is() const { return std::holds_alternative<T>(payload); }
};

class Engine {
 public:
  using Callback = std::function<void(const Event&)>;

  Engine();                            // events go to the queue (poll / wait)
  explicit Engine(Callback callback);  // events go to the callback, on the engine thread
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns its id. Cancel is not queued: it takes effect at once.
  RequestId submit(Request request);
  RequestId load_model(std::filesystem::path path, const ModelOptions& options = {});
  RequestId generate(request::Generate request);
  RequestId unload();
  RequestId snapshot();
  RequestId restore(std::vector<uint8_t> bytes);
  void cancel(RequestId target = 0);

  // The queue of events (empty when a callback was given).
  std::optional<Event> poll();
  std::optional<Event> wait(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peregrine
