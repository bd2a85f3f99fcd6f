// Loading a model through the engine: placement progress, cancelling a running or queued load,
// the backend named in ModelInfo, and a backend injected through request::LoadModel. The device
// side runs on EmulatedDeviceBackend, where placement copies every tensor (so progress has steps).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <vector>

#include "emulated_device_backend.h"
#include "peregrine/engine.h"
#include "peregrine/gguf.h"
#include "test_engine_events.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

using namespace std::chrono_literals;

using test::EmulatedDeviceBackend;
using test::Outcome;
using test::wait_for;

ModelOptions small_options() {
  ModelOptions o;
  o.context_length = 256;
  return o;
}

request::LoadModel emulated_device_load() {
  request::LoadModel load{test::tiny_model_path(), small_options()};
  load.backend_factory = [] { return std::make_unique<EmulatedDeviceBackend>(); };
  load.progress_interval = 0ms;  // every tensor
  return load;
}

std::vector<event::LoadProgress> progress_of(const Outcome& out) {
  std::vector<event::LoadProgress> progress;
  for (const Event& e : out.events)
    if (const auto* p = e.get_if<event::LoadProgress>()) progress.push_back(*p);
  return progress;
}

// Greedy ids after the tiny fixture's prompt match llama.cpp: the model that was loaded works.
void expect_greedy_works(Engine& engine) {
  const auto ref = test::tiny_greedy();
  request::Generate gen;
  gen.prompt = ref.prompt;
  gen.max_tokens = 4;
  const Outcome out = wait_for(engine, engine.generate(gen));
  ASSERT_NE(out.done(), nullptr);
  EXPECT_EQ(out.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 4));
}

TEST(EngineLoad, ProgressRisesTensorByTensorToTheTotalOnADeviceBackend) {
  Engine engine;
  const Outcome out = wait_for(engine, engine.submit(emulated_device_load()));
  ASSERT_NE(out.closing<event::ModelLoaded>(), nullptr);
  const std::vector<event::LoadProgress> progress = progress_of(out);
  EXPECT_EQ(progress.size() + 1, out.events.size()) << "progress events come before ModelLoaded, nothing else";
  ASSERT_GT(progress.size(), 10u);  // one per tensor of the fixture, plus the ends
  const uint64_t total = progress.front().total_bytes;
  EXPECT_GT(total, 0u);
  EXPECT_EQ(progress.front().done_bytes, 0u);
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].total_bytes, total);
    EXPECT_GT(progress[i].done_bytes, progress[i - 1].done_bytes) << "event " << i;
  }
  EXPECT_EQ(progress.back().done_bytes, total);

  const ModelInfo& info = out.closing<event::ModelLoaded>()->info;
  EXPECT_EQ(info.backend, "emulated-device");
  expect_greedy_works(engine);
}

TEST(EngineLoad, HostBackendReportsOnlyBothEndsAndNamesTheBackend) {
  Engine engine;
  const Outcome out = wait_for(engine, engine.load_model(test::tiny_model_path(), small_options()));
  ASSERT_NE(out.closing<event::ModelLoaded>(), nullptr);
  const std::vector<event::LoadProgress> progress = progress_of(out);
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].done_bytes, 0u);
  EXPECT_GT(progress[0].total_bytes, 0u);
  EXPECT_EQ(progress[1].done_bytes, progress[0].total_bytes);
  EXPECT_EQ(progress[1].total_bytes, progress[0].total_bytes);
  EXPECT_EQ(out.closing<event::ModelLoaded>()->info.backend, "cpu");
}

TEST(EngineLoad, ProgressIntervalThinsTheEventsButKeepsBothEnds) {
  Engine engine;
  request::LoadModel load = emulated_device_load();
  load.progress_interval = 1h;
  const Outcome out = wait_for(engine, engine.submit(load));
  ASSERT_NE(out.closing<event::ModelLoaded>(), nullptr);
  const std::vector<event::LoadProgress> progress = progress_of(out);
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].done_bytes, 0u);
  EXPECT_EQ(progress[1].done_bytes, progress[1].total_bytes);
}

// Events in callback mode, so the test can act on the engine thread between two tensors.
class EventLog {
 public:
  void add(const Event& e) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    }
    cv_.notify_all();
  }
  // The events of `id` once its closing event is in (empty after 60 s).
  std::vector<Event> closed(RequestId id) {
    std::unique_lock lock(mutex_);
    std::vector<Event> of_id;
    const bool closed = cv_.wait_for(lock, 60s, [&] {
      of_id.clear();
      for (const Event& e : events_)
        if (e.request == id) of_id.push_back(e);
      return !of_id.empty() && test::closes(of_id.back());
    });
    return closed ? of_id : std::vector<Event>{};
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

TEST(EngineLoad, CancelStopsARunningLoadAndTheEngineLoadsAnotherModel) {
  EventLog log;
  Engine* engine_ptr = nullptr;
  std::atomic<bool> cancel_next_load{false};
  Engine engine([&](const Event& e) {
    log.add(e);
    // Cancelled from the engine thread at the first report: the next tensor placed sees it.
    if (e.is<event::LoadProgress>() && cancel_next_load.exchange(false)) engine_ptr->cancel(e.request);
  });
  engine_ptr = &engine;

  const std::vector<Event> first = log.closed(engine.submit(emulated_device_load()));
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(first.back().is<event::ModelLoaded>());

  cancel_next_load = true;
  const std::vector<Event> cancelled = log.closed(engine.submit(emulated_device_load()));
  ASSERT_FALSE(cancelled.empty());
  const auto* error = cancelled.back().get_if<event::Error>();
  ASSERT_NE(error, nullptr);
  EXPECT_TRUE(error->cancelled) << error->message;
  EXPECT_NE(error->message.find("cancelled"), std::string::npos) << error->message;
  // Stopped at the first tensor: the (0, total) report, then the closing event.
  ASSERT_EQ(cancelled.size(), 2u);
  const auto* only_progress = cancelled.front().get_if<event::LoadProgress>();
  ASSERT_NE(only_progress, nullptr);
  EXPECT_EQ(only_progress->done_bytes, 0u);

  // The old model went before the cancelled load began: nothing is loaded now.
  request::Generate gen;
  gen.prompt = test::tiny_greedy().prompt;
  const std::vector<Event> no_model = log.closed(engine.generate(gen));
  ASSERT_FALSE(no_model.empty());
  ASSERT_TRUE(no_model.back().is<event::Error>());
  EXPECT_FALSE(no_model.back().get_if<event::Error>()->cancelled);

  const std::vector<Event> again = log.closed(engine.submit(emulated_device_load()));
  ASSERT_FALSE(again.empty());
  ASSERT_TRUE(again.back().is<event::ModelLoaded>());
  EXPECT_EQ(again.back().get_if<event::ModelLoaded>()->info.backend, "emulated-device");
  const auto ref = test::tiny_greedy();
  gen.max_tokens = 4;
  const std::vector<Event> answer = log.closed(engine.generate(gen));
  std::vector<int32_t> ids;
  for (const Event& e : answer)
    if (const auto* t = e.get_if<event::TokenText>()) ids.insert(ids.end(), t->ids.begin(), t->ids.end());
  ASSERT_FALSE(answer.empty());
  EXPECT_TRUE(answer.back().is<event::Done>());
  EXPECT_EQ(ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 4));
}

TEST(EngineLoad, CancelOfAQueuedLoadClosesItWithoutLoading) {
  Engine engine;
  // The first load waits in its backend factory until the second is queued and cancelled.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  request::LoadModel blocked = emulated_device_load();
  blocked.backend_factory = [released] {
    released.wait();
    return std::make_unique<EmulatedDeviceBackend>();
  };
  const RequestId first = engine.submit(blocked);
  const RequestId queued = engine.submit(emulated_device_load());
  const RequestId after = engine.load_model(test::tiny_model_path(), small_options());
  engine.cancel(queued);
  release.set_value();

  EXPECT_NE(wait_for(engine, first).closing<event::ModelLoaded>(), nullptr);
  const Outcome q = wait_for(engine, queued);
  ASSERT_NE(q.error(), nullptr);
  EXPECT_TRUE(q.error()->cancelled);
  EXPECT_EQ(q.events.size(), 1u) << "no progress: the load never started";
  const Outcome a = wait_for(engine, after);  // not affected by the cancel before it
  ASSERT_NE(a.closing<event::ModelLoaded>(), nullptr);
  expect_greedy_works(engine);
}

TEST(EngineLoad, FailedLoadIsNotReportedAsCancelled) {
  Engine engine;
  const Outcome missing = wait_for(engine, engine.load_model("/nonexistent/model.gguf", small_options()));
  ASSERT_NE(missing.error(), nullptr);
  EXPECT_FALSE(missing.error()->cancelled);
}

// Model::load itself: the callback sees rising bytes and can stop the load between two tensors.
TEST(ModelLoadProgress, ReturningFalseThrowsLoadCancelled) {
  const GgufFile file = GgufFile::open(test::tiny_model_path());
  std::vector<uint64_t> seen;
  auto stop_after_two = [&](uint64_t done, uint64_t total) {
    seen.push_back(done);
    return seen.size() < 2;
  };
  EXPECT_THROW(Model::load(file, small_options(), nullptr, std::make_unique<EmulatedDeviceBackend>(), stop_after_two),
               LoadCancelled);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], 0u);
  EXPECT_GT(seen[1], 0u);

  uint64_t last_done = 0, last_total = 0;
  int calls = 0;
  auto model = Model::load(file, small_options(), nullptr, std::make_unique<EmulatedDeviceBackend>(),
                           [&](uint64_t done, uint64_t total) {
                             EXPECT_GE(done, last_done);
                             last_done = done;
                             last_total = total;
                             ++calls;
                             return true;
                           });
  EXPECT_GT(calls, 10);
  EXPECT_EQ(last_done, last_total);
}

}  // namespace
}  // namespace peregrine
