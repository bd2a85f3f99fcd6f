// The engine thread: a request queue in, events out, one model owned by the worker.
#include "peregrine/engine.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "decode/engine_snapshot.h"
#include "decode/generation_loop.h"
#include "decode/loaded_model.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine {

std::optional<MtpSetting> parse_mtp_setting(std::string_view text) {
  if (text == "auto") return MtpSetting::automatic();
  if (text == "off") return MtpSetting::off();
  if (text.size() == 1 && text[0] >= '1' && text[0] <= '0' + kMaxMtpDraftLength) return MtpSetting::fixed(text[0] - '0');
  return std::nullopt;
}

std::string mtp_setting_name(const MtpSetting& setting) {
  switch (setting.mode) {
    case MtpSetting::Mode::Auto: return "auto";
    case MtpSetting::Mode::Off: return "off";
    case MtpSetting::Mode::Fixed: return std::to_string(setting.draft_length);
  }
  return "unknown";
}

struct Engine::Impl {
  explicit Impl(Callback cb) : callback(std::move(cb)) { worker = std::thread([this] { run(); }); }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
      cancel_all_upto = next_id - 1;
      cancel_flag.store(true);
      requests.clear();
    }
    requests_cv.notify_all();
    worker.join();
  }

  // ---- client side ----
  RequestId submit(Request request) {
    if (const auto* cancel = std::get_if<request::Cancel>(&request)) {
      std::lock_guard lock(mutex);
      const RequestId id = next_id++;
      if (cancel->target == 0) cancel_all_upto = id;
      else if (cancel->target >= current && cancel->target < id) cancelled_ids.insert(cancel->target);  // others: done or unknown
      cancel_flag.store(true);
      return id;
    }
    RequestId id;
    {
      std::lock_guard lock(mutex);
      id = next_id++;
      requests.emplace_back(id, std::move(request));
    }
    requests_cv.notify_one();
    return id;
  }

  std::optional<Event> poll() {
    std::lock_guard lock(event_mutex);
    return pop_event();
  }

  std::optional<Event> wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(event_mutex);
    events_cv.wait_for(lock, timeout, [this] { return !events.empty(); });
    return pop_event();
  }

  // ---- engine thread ----
  void run() {
    for (;;) {
      std::pair<RequestId, Request> next;
      {
        std::unique_lock lock(mutex);
        requests_cv.wait(lock, [this] { return stopping || !requests.empty(); });
        if (stopping) break;
        next = std::move(requests.front());
        requests.pop_front();
        current = next.first;
      }
      handle(next.first, next.second);
      forget_cancel(next.first);
    }
    loaded.reset();
  }

  void handle(RequestId id, Request& request) {
    if (auto* load = std::get_if<request::LoadModel>(&request)) return handle_load(id, *load);
    if (auto* gen = std::get_if<request::Generate>(&request)) return handle_generate(id, *gen);
    if (std::holds_alternative<request::Snapshot>(request)) return handle_snapshot(id);
    if (auto* restore = std::get_if<request::Restore>(&request)) return handle_restore(id, *restore);
    if (std::holds_alternative<request::Unload>(request)) {
      loaded.reset();
      log::get("engine")->info("model unloaded");
      return emit(id, event::Unloaded{});
    }
  }

  void handle_load(RequestId id, const request::LoadModel& load) {
    // Free the old model first: two large models rarely fit side by side.
    loaded.reset();
    if (is_cancelled(id)) {
      log::get("engine")->info("load of {} cancelled before it started", load.path.string());
      return emit(id, event::Error{fmt::format("{}: load cancelled", load.path.string()), true});
    }
    try {
      LoadedModel::Hooks hooks;
      hooks.backend_factory = load.backend_factory;
      hooks.progress = load_progress_reporter(id, load.progress_interval);
      loaded = LoadedModel::load(load.path, load.options, {}, hooks);
      log::get("engine")->info("loaded {} in {:.2f} s on {}", load.path.string(), loaded->info().load_seconds,
                               loaded->info().backend);
      if (!loaded->info().has_mtp)
        log::get("mtp")->info("the model has no MTP (nextn) block: it decodes without speculative drafts");
      emit(id, event::ModelLoaded{loaded->info()});
    } catch (const LoadCancelled& e) {
      loaded.reset();
      log::get("engine")->info("{}", e.what());
      emit(id, event::Error{e.what(), true});
    } catch (const std::exception& e) {
      loaded.reset();
      log::get("engine")->warn("load failed: {}", e.what());
      emit(id, event::Error{e.what()});
    }
  }

  // Forwards placement progress as LoadProgress events (the first and the last always, the rest at
  // most every `interval`) and cancels the load when its request is cancelled.
  LoadProgressCallback load_progress_reporter(RequestId id, std::chrono::milliseconds interval) {
    struct Last {
      std::optional<std::chrono::steady_clock::time_point> when;
      uint64_t done = 0;
    };
    return [this, id, interval, last = Last{}](uint64_t done, uint64_t total) mutable {
      if (cancel_flag.load(std::memory_order_relaxed) && is_cancelled(id)) return false;
      const auto now = std::chrono::steady_clock::now();
      const bool first = !last.when;
      const bool final = done == total && (first || last.done != done);
      if (first || final || (now - *last.when >= interval && done != last.done)) {
        last = {now, done};
        emit(id, event::LoadProgress{done, total});
      }
      return true;
    };
  }

  void handle_generate(RequestId id, const request::Generate& gen) {
    if (is_cancelled(id)) return finish_request(id, cancelled_before_start(gen));
    if (!loaded) {
      forget_cancel(id);
      return emit(id, event::Error{"generate: no model is loaded"});
    }
    try {
      const std::vector<int32_t> prompt = loaded->prompt_ids(gen.prompt);
      GenerationCallbacks callbacks;
      callbacks.cancelled = [this, id] { return cancel_flag.load(std::memory_order_relaxed) && is_cancelled(id); };
      callbacks.on_text = [this, id](event::TokenText&& text) { emit(id, std::move(text)); };
      callbacks.on_stats = [this, id](const event::StepStats& stats) { emit(id, stats); };
      GenerationLoop loop(loaded->model(), loaded->sequence(), loaded->history(), loaded->tokenizer());
      finish_request(id, event::Done{loop.run(prompt, gen, callbacks, loaded->think_split(gen.prompt))});
    } catch (const std::exception& e) {
      forget_cancel(id);
      log::get("engine")->warn("generate failed: {}", e.what());
      emit(id, event::Error{e.what()});
    }
  }

  void handle_snapshot(RequestId id) {
    if (!loaded) return emit(id, event::Error{"snapshot: no model is loaded"});
    try {
      event::SnapshotTaken taken;
      write_engine_snapshot(loaded->model(), loaded->sequence(), loaded->history(), taken.bytes);
      taken.n_past = loaded->sequence().n_past();
      taken.model_fingerprint = loaded->model().fingerprint();
      log::get("engine")->debug("snapshot at position {}: {} bytes", taken.n_past, taken.bytes.size());
      emit(id, std::move(taken));
    } catch (const std::exception& e) {
      log::get("engine")->warn("snapshot failed: {}", e.what());
      emit(id, event::Error{e.what()});
    }
  }

  void handle_restore(RequestId id, const request::Restore& restore) {
    if (!loaded) return emit(id, event::Error{"restore: no model is loaded"});
    try {
      // Validates everything before touching the sequence or the id list.
      read_engine_snapshot(loaded->model(), loaded->sequence(), loaded->history(), restore.bytes);
      log::get("engine")->debug("restored position {}", loaded->sequence().n_past());
      emit(id, event::Restored{loaded->sequence().n_past()});
    } catch (const std::exception& e) {
      log::get("engine")->warn("restore refused: {}", e.what());
      emit(id, event::Error{e.what()});
    }
  }

  static event::Done cancelled_before_start(const request::Generate&) {
    event::Done done;
    done.stats.stop_reason = StopReason::Cancelled;
    return done;
  }

  void finish_request(RequestId id, const event::Done& done) {
    forget_cancel(id);
    emit(id, done);
  }

  bool is_cancelled(RequestId id) {
    std::lock_guard lock(mutex);
    return id <= cancel_all_upto || cancelled_ids.count(id) > 0;
  }

  void forget_cancel(RequestId id) {
    std::lock_guard lock(mutex);
    cancelled_ids.erase(id);
    // The flag only makes the per-step check look closer; clear it when nothing else is pending.
    if (cancelled_ids.empty()) cancel_flag.store(false);
  }

  template <class T>
  void emit(RequestId id, T&& payload) {
    Event event{id, std::forward<T>(payload)};
    if (callback) {
      callback(event);
      return;
    }
    {
      std::lock_guard lock(event_mutex);
      events.push_back(std::move(event));
    }
    events_cv.notify_all();
  }

  std::optional<Event> pop_event() {
    if (events.empty()) return std::nullopt;
    Event e = std::move(events.front());
    events.pop_front();
    return e;
  }

  Callback callback;

  std::mutex mutex;  // requests, cancellation bookkeeping, stopping
  std::condition_variable requests_cv;
  std::deque<std::pair<RequestId, Request>> requests;
  RequestId next_id = 1;
  RequestId current = 0;              // the request the engine thread took last
  RequestId cancel_all_upto = 0;      // every request id <= this is cancelled
  std::set<RequestId> cancelled_ids;  // individually cancelled
  std::atomic<bool> cancel_flag{false};
  bool stopping = false;

  std::mutex event_mutex;
  std::condition_variable events_cv;
  std::deque<Event> events;

  std::unique_ptr<LoadedModel> loaded;  // engine thread only
  std::thread worker;                   // last: started after every member above exists
};

Engine::Engine() : impl_(std::make_unique<Impl>(Callback{})) {}
Engine::Engine(Callback callback) : impl_(std::make_unique<Impl>(std::move(callback))) {}
Engine::~Engine() = default;

RequestId Engine::submit(Request request) { return impl_->submit(std::move(request)); }

RequestId Engine::load_model(std::filesystem::path path, const ModelOptions& options) {
  return submit(request::LoadModel{std::move(path), options});
}

RequestId Engine::generate(request::Generate request) { return submit(std::move(request)); }
RequestId Engine::unload() { return submit(request::Unload{}); }
RequestId Engine::snapshot() { return submit(request::Snapshot{}); }
RequestId Engine::restore(std::vector<uint8_t> bytes) { return submit(request::Restore{std::move(bytes)}); }
void Engine::cancel(RequestId target) { submit(request::Cancel{target}); }

std::optional<Event> Engine::poll() { return impl_->poll(); }
std::optional<Event> Engine::wait(std::chrono::milliseconds timeout) { return impl_->wait(timeout); }

}  // namespace peregrine
