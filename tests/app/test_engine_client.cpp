// EngineClient with the real engine thread on tests/data/qwen35-tiny/tiny-f32.gguf: signals
// arrive on the GUI thread, in order, coalesced; stop, failures and destruction mid-stream.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QThread>

#include "bridge/engine_client.h"
#include "bridge_test_util.h"
#include "peregrine/engine.h"

namespace peregrine::app {
namespace {

using peregrine::GenerationStats;
using test::tinyModelPath;
using test::waitUntil;

peregrine::ModelOptions smallOptions() {
  peregrine::ModelOptions o;
  o.context_length = 4096;
  o.n_threads = 1;
  return o;
}

GenerationRequest chatRequest(int maxTokens) {
  GenerationRequest r;
  r.messages.push_back(peregrine::ChatMessage{"user", "What is the capital of France?", std::nullopt, {}, {}, {}});
  r.options.enable_thinking = true;
  r.format = peregrine::ChatFormat::Qwen3;  // the fixture prompt of tests/data/qwen35-tiny
  r.maxTokens = maxTokens;
  return r;
}

// Everything a client emitted, with the thread each signal arrived on.
struct Recorder {
  explicit Recorder(EngineClient& client) {
    auto onGui = [this] { if (QThread::currentThread() != QCoreApplication::instance()->thread()) ++offThread; };
    QObject::connect(&client, &EngineClient::modelLoaded, &client, [this, onGui](const ModelSummary& info) {
      onGui();
      loaded = info;
    });
    QObject::connect(&client, &EngineClient::modelLoadFailed, &client,
                     [this, onGui](const QString&, const QString& message) {
                       onGui();
                       loadErrors << message;
                     });
    QObject::connect(&client, &EngineClient::answerText, &client, [this, onGui](quint64 id, const QString& piece) {
      onGui();
      answer += piece;
      ++textSignals;
      lastId = id;
    });
    QObject::connect(&client, &EngineClient::thinkingText, &client, [this, onGui](quint64, const QString& piece) {
      onGui();
      thinking += piece;
      ++textSignals;
    });
    QObject::connect(&client, &EngineClient::progress, &client, [this, onGui](quint64, const GenerationStats& p) {
      onGui();
      ++statsSignals;
      lastProgress = p;
    });
    QObject::connect(&client, &EngineClient::finished, &client,
                     [this, onGui](quint64 id, const GenerationStats& stats) {
                       onGui();
                       finishedIds.push_back(id);
                       const std::string_view reason =
                           stats.stop_reason ? peregrine::stop_reason_name(*stats.stop_reason) : "none";
                       reasons << QString::fromUtf8(reason.data(), static_cast<int>(reason.size()));
                       lastStats = stats;
                     });
    QObject::connect(&client, &EngineClient::error, &client, [this, onGui](quint64 id, const QString& message) {
      onGui();
      errorIds.push_back(id);
      errors << message;
    });
  }

  int offThread = 0;
  std::optional<ModelSummary> loaded;
  QStringList loadErrors;
  QString answer, thinking;
  int textSignals = 0;
  quint64 lastId = 0;
  int statsSignals = 0;
  GenerationStats lastProgress;
  std::vector<quint64> finishedIds;
  QStringList reasons;
  GenerationStats lastStats;
  std::vector<quint64> errorIds;
  QStringList errors;
};

// Room for answers long enough that stopping them is never a race with their natural end.
constexpr int kLongAnswer = 16000;
peregrine::ModelOptions longOptions() {
  peregrine::ModelOptions o = smallOptions();
  o.context_length = kLongAnswer + 256;
  return o;
}

bool loadTiny(EngineClient& client, Recorder& rec, const peregrine::ModelOptions& options = smallOptions()) {
  rec.loaded.reset();
  const qsizetype failures = rec.loadErrors.size();
  client.loadModel(tinyModelPath(), options);
  return waitUntil([&] { return rec.loaded.has_value() || rec.loadErrors.size() > failures; }) &&
         rec.loaded.has_value();
}

struct EngineOutput {
  std::string thinking, text;
};

// The thinking and answer text the engine itself produces for a request (queue mode, no Qt).
EngineOutput engineOutput(const GenerationRequest& r) {
  peregrine::Engine engine;
  engine.load_model(tinyModelPath().toStdString(), smallOptions());
  peregrine::request::Generate g;
  peregrine::ChatPrompt chat{r.messages, r.options, r.format};
  g.prompt = chat;
  g.max_tokens = r.maxTokens;
  g.ignore_eos = r.ignoreEos;
  engine.generate(g);
  EngineOutput out;
  for (;;) {
    auto e = engine.wait(std::chrono::seconds(30));
    if (!e) return {"<timeout>", "<timeout>"};
    if (auto* t = e->get_if<peregrine::event::TokenText>()) {
      out.thinking += t->thinking;
      out.text += t->text;
    }
    if (e->is<peregrine::event::Done>() || e->is<peregrine::event::Error>()) return out;
  }
}

std::string engineText(const GenerationRequest& r) { return engineOutput(r).text; }

TEST(EngineClient, LoadsAndStreamsAGreedyAnswerOnTheGuiThread) {
  EngineClient client;
  Recorder rec(client);
  std::vector<EngineClient::State> states;
  QObject::connect(&client, &EngineClient::stateChanged, &client,
                   [&](EngineClient::State s) { states.push_back(s); });

  ASSERT_TRUE(loadTiny(client, rec)) << rec.loadErrors.join("; ").toStdString();
  EXPECT_EQ(rec.loaded->architecture, "qwen35");
  EXPECT_TRUE(rec.loaded->hasMtp);
  EXPECT_EQ(rec.loaded->contextLength, 4096);
  EXPECT_EQ(rec.loaded->layers, 4);
  EXPECT_EQ(client.state(), EngineClient::State::Ready);
  ASSERT_TRUE(client.model().has_value());

  const GenerationRequest request = chatRequest(32);
  const quint64 id = client.generate(request);
  EXPECT_EQ(client.state(), EngineClient::State::Generating);
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty() || !rec.errors.isEmpty(); }));
  ASSERT_TRUE(rec.errors.isEmpty()) << rec.errors.join("; ").toStdString();

  EXPECT_EQ(rec.offThread, 0);
  EXPECT_EQ(rec.finishedIds, std::vector<quint64>{id});
  EXPECT_EQ(rec.lastId, id);
  EXPECT_EQ(rec.reasons.value(0), "max_tokens");
  EXPECT_EQ(rec.lastStats.stop_reason, peregrine::StopReason::MaxTokens);
  EXPECT_EQ(rec.lastStats.generated_tokens, 32);
  EXPECT_EQ(rec.lastStats.prompt_tokens, 16);  // the fixture's greedy prompt
  EXPECT_GT(rec.lastStats.decode_tok_s, 0.0);
  // Qwen3's generation prompt with thinking on leaves the think block to the model; this
  // random model opens none, so everything is answer, exactly the engine's text.
  EXPECT_TRUE(rec.thinking.isEmpty());
  EXPECT_EQ(rec.answer.toStdString(), engineText(request));
  EXPECT_FALSE(rec.answer.isEmpty());
  EXPECT_EQ(client.state(), EngineClient::State::Ready);
  ASSERT_GE(states.size(), 3u);
  EXPECT_EQ(states.front(), EngineClient::State::Loading);
  EXPECT_EQ(states.back(), EngineClient::State::Ready);
}

// The engine splits the think block; the client passes thinking and answer on apart, unchanged.
TEST(EngineClient, PassesTheEnginesThinkingAndAnswerOnApart) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec));
  GenerationRequest request = chatRequest(24);
  request.format = peregrine::ChatFormat::Qwen36;  // its generation prompt ends with "<think>\n"
  request.options.enable_thinking = true;
  client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty(); }));
  const EngineOutput expected = engineOutput(request);
  EXPECT_FALSE(expected.thinking.empty()) << "the engine reported no thinking for an open think block";
  EXPECT_EQ(rec.thinking.toStdString(), expected.thinking);
  EXPECT_EQ(rec.answer.toStdString(), expected.text);
  EXPECT_EQ(rec.thinking.contains("<think>") || rec.thinking.contains("</think>"), false);
  EXPECT_EQ(rec.offThread, 0);
}

TEST(EngineClient, PassesTheMtpSettingAndReportsItsStatistics) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec));
  GenerationRequest request = chatRequest(32);
  request.mtp = peregrine::MtpSetting::off();
  client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return rec.finishedIds.size() == 1; }));
  const QString plain = std::exchange(rec.answer, QString());
  EXPECT_FALSE(rec.lastStats.mtp.active);
  EXPECT_EQ(rec.lastStats.mtp.drafted, 0);

  request.mtp = peregrine::MtpSetting::fixed(2);  // the fixture has an MTP block
  client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return rec.finishedIds.size() == 2; }));
  ASSERT_TRUE(rec.errors.isEmpty()) << rec.errors.join("; ").toStdString();
  EXPECT_TRUE(rec.lastStats.mtp.active);
  EXPECT_GT(rec.lastStats.mtp.drafted, 0);
  EXPECT_GE(rec.lastStats.mtp.acceptance_rate, 0.0);
  EXPECT_LE(rec.lastStats.mtp.acceptance_rate, 1.0);
  EXPECT_EQ(rec.answer, plain);  // greedy output does not depend on drafting
}

TEST(EngineClient, CoalescesTextToTheConfiguredRate) {
  EngineClient::Options options;
  options.minTextInterval = std::chrono::milliseconds(100);
  EngineClient client(options);
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec));

  GenerationRequest request = chatRequest(1500);
  request.ignoreEos = true;
  request.statsInterval = std::chrono::milliseconds(0);  // a StepStats event after every token
  QElapsedTimer clock;
  clock.start();
  client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty() || !rec.errors.isEmpty(); }, 60000));
  const qint64 elapsed = clock.elapsed();
  ASSERT_TRUE(rec.errors.isEmpty());
  EXPECT_EQ(rec.lastStats.generated_tokens, 1500);
  // Pieces arrive one per token; the GUI sees at most one update per interval plus the final flush.
  EXPECT_LE(rec.textSignals, elapsed / 100 + 2) << "elapsed " << elapsed << " ms";
  EXPECT_GE(rec.textSignals, 1);
  EXPECT_EQ(rec.answer.toStdString(), engineText(request));
  EXPECT_GT(rec.statsSignals, 0);
  EXPECT_LE(rec.statsSignals, 1500);
  EXPECT_GT(rec.lastProgress.generated_tokens, 1000);
  EXPECT_GT(rec.lastProgress.decode_tok_s, 0.0);
  EXPECT_FALSE(rec.lastProgress.stop_reason.has_value());  // only the final numbers have one
}

TEST(EngineClient, StopEndsTheAnswerWithCancelled) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec, longOptions()));

  GenerationRequest request = chatRequest(kLongAnswer);
  request.ignoreEos = true;
  const quint64 id = client.generate(request);
  QObject::connect(&client, &EngineClient::answerText, &client, [&](quint64 textId, const QString&) {
    client.stop(textId);
  });
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty(); }));
  EXPECT_EQ(rec.finishedIds.front(), id);
  EXPECT_EQ(rec.reasons.value(0), "cancelled");
  EXPECT_LT(rec.lastStats.generated_tokens, kLongAnswer);
  EXPECT_FALSE(rec.answer.isEmpty());
  EXPECT_EQ(client.state(), EngineClient::State::Ready);

  // The client (and the model) stay usable.
  rec.finishedIds.clear();
  rec.reasons.clear();
  client.generate(chatRequest(4));
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty(); }));
  EXPECT_EQ(rec.reasons.value(0), "max_tokens");
  EXPECT_EQ(rec.offThread, 0);
}

TEST(EngineClient, StopAllCancelsQueuedGenerationsToo) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec, longOptions()));
  GenerationRequest request = chatRequest(kLongAnswer);
  request.ignoreEos = true;
  const quint64 first = client.generate(request);
  const quint64 second = client.generate(request);
  client.stopAll();
  ASSERT_TRUE(waitUntil([&] { return rec.finishedIds.size() == 2; }));
  EXPECT_EQ(rec.finishedIds, (std::vector<quint64>{first, second}));
  EXPECT_EQ(rec.reasons, (QStringList{"cancelled", "cancelled"}));
}

TEST(EngineClient, BadModelFailsAndTheClientStaysUsable) {
  EngineClient client;
  Recorder rec(client);
  const QString bad = test::dataPath("gguf-corrupt/bad-magic.gguf");
  QString failedPath;
  QObject::connect(&client, &EngineClient::modelLoadFailed, &client,
                   [&](const QString& path, const QString&) { failedPath = path; });
  client.loadModel(bad, smallOptions());
  ASSERT_TRUE(waitUntil([&] { return !rec.loadErrors.isEmpty(); }));
  EXPECT_EQ(failedPath, bad);
  EXPECT_TRUE(rec.loadErrors.front().contains("bad-magic.gguf")) << rec.loadErrors.front().toStdString();
  EXPECT_FALSE(client.hasModel());
  EXPECT_EQ(client.state(), EngineClient::State::NoModel);

  client.loadModel(test::dataPath("no-such-dir/missing.gguf"), smallOptions());
  ASSERT_TRUE(waitUntil([&] { return rec.loadErrors.size() == 2; }));

  // Generating with no model is an error signal, not a hang or a crash.
  const quint64 orphan = client.generate(chatRequest(4));
  ASSERT_TRUE(waitUntil([&] { return !rec.errorIds.empty(); }));
  EXPECT_EQ(rec.errorIds.front(), orphan);
  EXPECT_TRUE(rec.finishedIds.empty());

  ASSERT_TRUE(loadTiny(client, rec));
  client.generate(chatRequest(8));
  ASSERT_TRUE(waitUntil([&] { return !rec.finishedIds.empty(); }));
  EXPECT_EQ(rec.reasons.value(0), "max_tokens");
}

struct LoadProgressStep {
  quint64 done = 0, total = 0;
  bool afterLoaded = false;
};

TEST(EngineClient, ReportsLoadProgressUpToTheTotalAndTheBackend) {
  EngineClient client;
  Recorder rec(client);
  std::vector<LoadProgressStep> steps;
  QString progressPath;
  QObject::connect(&client, &EngineClient::modelLoadProgress, &client,
                   [&](const QString& path, quint64 done, quint64 total) {
                     progressPath = path;
                     steps.push_back({done, total, rec.loaded.has_value()});
                   });
  ASSERT_TRUE(loadTiny(client, rec));
  EXPECT_EQ(progressPath, tinyModelPath());
  ASSERT_GE(steps.size(), 2u);  // the CPU backend reads the weights in place: both ends only
  EXPECT_EQ(steps.front().done, 0u);
  EXPECT_GT(steps.back().total, 0u);
  EXPECT_EQ(steps.back().done, steps.back().total);
  for (const LoadProgressStep& step : steps) EXPECT_FALSE(step.afterLoaded);
  EXPECT_EQ(client.modelBackend(), "cpu");

  bool unloaded = false;
  QObject::connect(&client, &EngineClient::modelUnloaded, &client, [&] { unloaded = true; });
  client.unloadModel();
  ASSERT_TRUE(waitUntil([&] { return unloaded; }));
  EXPECT_TRUE(client.modelBackend().isEmpty());
}

TEST(EngineClient, CancelLoadsEndsAQueuedLoadWithCancelled) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec, longOptions()));
  QStringList cancelledPaths;
  QObject::connect(&client, &EngineClient::modelLoadCancelled, &client,
                   [&](const QString& path) { cancelledPaths << path; });
  int progressSignals = 0;
  QObject::connect(&client, &EngineClient::modelLoadProgress, &client, [&] { ++progressSignals; });

  // The load waits behind a long answer, so it is cancelled before it starts.
  GenerationRequest request = chatRequest(kLongAnswer);
  request.ignoreEos = true;
  const quint64 generation = client.generate(request);
  client.loadModel(tinyModelPath(), smallOptions());
  EXPECT_EQ(client.state(), EngineClient::State::Loading);
  client.cancelLoads();
  client.stop(generation);
  ASSERT_TRUE(waitUntil([&] { return !cancelledPaths.isEmpty(); }));
  EXPECT_EQ(cancelledPaths, QStringList{tinyModelPath()});
  EXPECT_TRUE(rec.loadErrors.isEmpty()) << "a cancel is not a failure";
  EXPECT_EQ(progressSignals, 0);
  EXPECT_EQ(rec.reasons.value(0), "cancelled");
  // A load frees the old model when it is taken up, cancelled or not.
  EXPECT_FALSE(client.hasModel());
  EXPECT_TRUE(client.modelBackend().isEmpty());
  EXPECT_EQ(client.state(), EngineClient::State::NoModel);

  ASSERT_TRUE(loadTiny(client, rec));
  EXPECT_EQ(client.modelBackend(), "cpu");
  EXPECT_EQ(rec.offThread, 0);
}

TEST(EngineClient, InvalidSamplingIsAnErrorSignal) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec));
  GenerationRequest request = chatRequest(8);
  request.sampling.temperature = 0.7f;
  request.sampling.top_p = 0.0f;  // outside (0, 1]
  const quint64 id = client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return !rec.errorIds.empty(); }));
  EXPECT_EQ(rec.errorIds.front(), id);
  EXPECT_EQ(client.state(), EngineClient::State::Ready);
}

TEST(EngineClient, UnloadEmitsUnloaded) {
  EngineClient client;
  Recorder rec(client);
  ASSERT_TRUE(loadTiny(client, rec));
  bool unloaded = false;
  QObject::connect(&client, &EngineClient::modelUnloaded, &client, [&] { unloaded = true; });
  client.unloadModel();
  ASSERT_TRUE(waitUntil([&] { return unloaded; }));
  EXPECT_FALSE(client.hasModel());
  EXPECT_EQ(client.state(), EngineClient::State::NoModel);
}

TEST(EngineClient, DestroyingDuringGenerationCancelsPromptly) {
  auto client = std::make_unique<EngineClient>();
  Recorder rec(*client);
  ASSERT_TRUE(loadTiny(*client, rec, longOptions()));
  GenerationRequest request = chatRequest(kLongAnswer);
  request.ignoreEos = true;
  client->generate(request);
  client->generate(request);  // a queued one is dropped as well
  ASSERT_TRUE(waitUntil([&] { return rec.textSignals > 0; }));
  ASSERT_TRUE(rec.finishedIds.empty());

  QElapsedTimer clock;
  clock.start();
  client.reset();
  EXPECT_LT(clock.elapsed(), 2000) << "the engine thread must stop within a decode step";
  const int textSignals = rec.textSignals;
  test::spinFor(100);  // drain() calls still queued must not run on the destroyed client
  EXPECT_EQ(rec.textSignals, textSignals);
  EXPECT_TRUE(rec.finishedIds.empty());
}

}  // namespace
}  // namespace peregrine::app

namespace peregrine::app {
namespace {

TEST(EngineClient, DestroyingRightAfterSubmittingIsClean) {
  int emitted = 0;
  {
    EngineClient client;
    QObject::connect(&client, &EngineClient::modelLoaded, &client, [&] { ++emitted; });
    QObject::connect(&client, &EngineClient::answerText, &client, [&] { ++emitted; });
    QObject::connect(&client, &EngineClient::finished, &client, [&] { ++emitted; });
    client.loadModel(test::tinyModelPath());
    GenerationRequest request;
    request.messages.push_back(peregrine::ChatMessage{"user", "Hi", std::nullopt, {}, {}, {}});
    request.maxTokens = 100000;
    request.ignoreEos = true;
    client.generate(request);
    QThread::msleep(20);  // let the engine thread load and start decoding with no event loop running
  }
  test::spinFor(50);
  EXPECT_EQ(emitted, 0);  // nothing reaches the event loop after the destructor
}

}  // namespace
}  // namespace peregrine::app
